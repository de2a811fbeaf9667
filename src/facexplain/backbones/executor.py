"""The executor core both graph front ends (ONNX, TF.js) compile into.

A front end turns its file format into a ``Program``: a list of ``Step``s in execution order,
each reading named values and writing named values. This module runs such a program (freeing
every intermediate after its last read, so batch memory stays flat), splits it into a chain of
stages for incremental re-evaluation, and keeps the graph's constants as torch state: floating
point weights are frozen ``nn.Parameter``s (so ``parameters()``, ``state_dict()`` and
re-initialisation see them), everything else (shapes, integer tables) is a buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

import torch
from torch import nn

from facexplain.backbones.base import Stage, unknown_nodes
from facexplain.backbones.stages import single_live_cuts

Value = torch.Tensor | None
Env = dict[str, Value]


class Step:
    """One runtime operation: reads the values named in ``inputs``, writes ``outputs``."""

    inputs: list[str]

    @property
    def outputs(self) -> list[str]:
        raise NotImplementedError

    def run(self, args: list[Value]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        raise NotImplementedError


class Program:
    """Steps in execution order, with the values each step is the last reader of."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        last_read: dict[str, int] = {}
        for i, step in enumerate(steps):
            for name in step.inputs:
                last_read[name] = i
        self.frees: list[list[str]] = [[] for _ in steps]
        for name, i in last_read.items():
            if name:
                self.frees[i].append(name)

    def execute(self, env: Env, start: int = 0, stop: int | None = None,
                keep: Iterable[str] = ()) -> Env:
        """Run steps[start:stop] in ``env`` (updated in place); values in ``keep`` survive."""
        kept = set(keep)
        stop = len(self.steps) if stop is None else stop
        for i in range(start, stop):
            step = self.steps[i]
            try:
                args = [env[name] for name in step.inputs]
            except KeyError as err:
                raise KeyError(f"input '{err.args[0]}' was not fed") from None
            out = step.run(args)
            if isinstance(out, tuple):
                env.update(zip(step.outputs, out, strict=False))
            else:
                env[step.outputs[0]] = out
            for name in self.frees[i]:
                if name not in kept:
                    env.pop(name, None)
        return env

    def cuts(self, source: str, stop: int, runtime: Callable[[str], bool]) -> list[tuple[int, str]]:
        """Where steps[:stop] can be cut with one runtime value live (see ``single_live_cuts``)."""
        steps = self.steps[:stop]
        return single_live_cuts([[n for n in s.inputs if n and runtime(n)] for s in steps],
                                [[n for n in s.outputs if n and runtime(n)] for s in steps],
                                source)

    def chain(self, source: str, output: str, stop: int, cuts: Sequence[tuple[int, str]],
              env: Callable[[], Env], enter: Callable[[str, torch.Tensor], torch.Tensor],
              leave: Callable[[str, torch.Tensor], torch.Tensor]) -> list[Stage]:
        """steps[:stop] as stages cut at ``cuts``; ``enter``/``leave`` convert at the seams."""
        starts = [(-1, source), *cuts]
        ends = [*cuts, (stop - 1, output)]
        return [partial(self._run_stage, src, a + 1, b + 1, dst, env, enter, leave)
                for (a, src), (b, dst) in zip(starts, ends, strict=True)]

    def _run_stage(self, src: str, start: int, stop: int, dst: str, env: Callable[[], Env],
                   enter: Callable[[str, torch.Tensor], torch.Tensor],
                   leave: Callable[[str, torch.Tensor], torch.Tensor],
                   x: torch.Tensor) -> torch.Tensor:
        values = env()
        values[src] = enter(src, x)
        out = self.execute(values, start, stop, {dst})[dst]
        assert out is not None
        return leave(dst, out)


class GraphExecutor(nn.Module):
    """Base of the graph front ends: weights as frozen parameters, nodes by name.

    Subclasses implement ``node_names``, ``forward_nodes`` and ``stages``; ``prepare`` lets one
    fail at load time (an unsupported op, a missing node) rather than at the first forward.
    """

    def __init__(self) -> None:
        super().__init__()
        self._attr_of: dict[str, str] = {}

    def register_weights(self, tensors: Mapping[str, torch.Tensor], channels_last: bool = False,
                         statistics: Iterable[str] = ()) -> None:
        """Floating tensors become frozen parameters, others buffers, under sanitised names.

        ``statistics`` (batch-norm running mean/variance) are float but, as in ``nn.BatchNorm``,
        persistent buffers rather than parameters: re-initialising every parameter must not
        make a variance negative. ``channels_last`` stores 4-D weights in NHWC memory order.
        """
        stats = set(statistics)
        for name, t in tensors.items():
            attr = name.replace(".", "_") or "_"
            if hasattr(self, attr) or attr in self._attr_of.values():
                attr = f"{attr}_{len(self._attr_of)}"
            if t.is_floating_point() and name in stats:
                self.register_buffer(attr, t)
            elif t.is_floating_point():
                if channels_last and t.dim() == 4:
                    t = t.contiguous(memory_format=torch.channels_last)
                self.register_parameter(attr, nn.Parameter(t, requires_grad=False))
            else:
                self.register_buffer(attr, t, persistent=False)
            self._attr_of[name] = attr

    def weight(self, name: str) -> torch.Tensor:
        value = getattr(self, self._attr_of[name])
        assert isinstance(value, torch.Tensor)
        return value

    def weights(self) -> dict[str, torch.Tensor]:
        """Every constant of the graph by its graph name (parameters and buffers, live)."""
        return {name: self.weight(name) for name in self._attr_of}

    def forget_plans(self) -> None:
        """Drop whatever was compiled from the weights (nothing here; see ``GraphModule``)."""

    def weights_version(self) -> tuple[int, ...]:
        """Changes whenever a weight is changed in place (``load_state_dict``, ``init``)."""
        return tuple(t._version for t in (*self.parameters(), *self.buffers()))

    def node_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def check_nodes(self, nodes: Iterable[str], extra: Iterable[str] = (), hint: str = "") -> None:
        """Raise ``UnknownNode`` (one line, a few valid names) for names the graph lacks."""
        names = self.node_names()
        known = set(names) | set(extra)
        missing = [n for n in nodes if n not in known]
        if missing:
            raise unknown_nodes(missing, names, hint)

    def prepare(self, nodes: Sequence[str]) -> None:
        self.check_nodes(nodes)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def stages(self, output: str) -> list[Stage]:
        raise NotImplementedError
