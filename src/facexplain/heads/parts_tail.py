"""The backbone's layers between the head's middle and late maps, as weights that can train.

Why: on a frozen backbone the part-filter head's filters do not tie to face parts (the paper
trains the whole network). The unfrozen trial lets the last stage(s) move under SAD + FAD
while everything below the middle map stays frozen, so the cached middle maps still serve as
inputs: the tail recomputes the late map from the middle one at every step.

Only graph backbones (ONNX or TF.js front ends) can be cut this way, and only where the
middle map alone carries everything on to the late map (a single-live cut of the plan).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from facexplain.errors import InvalidArgument


def _graph_of(backbone: str) -> tuple[Any, int]:
    """A fresh copy of the backbone's graph (the shared one stays frozen) and its input size."""
    from facexplain.backbones.registry import get_spec, load_backbone

    graph = getattr(load_backbone(backbone), "graph", None)
    if graph is None or not hasattr(graph, "plan"):
        raise InvalidArgument(f"backbone '{backbone}' is not a graph model; the unfrozen trial "
                              "needs one (sface, mobileface, faceres or a user ONNX model)")
    return graph, get_spec(backbone).input_size


def _key(name: str) -> str:
    return name.replace(".", "__")


class BackboneTail(nn.Module):
    """``late = tail(middle)``: the backbone's steps from node ``source`` to node ``target``.

    The trainable tensors are exactly the backbone weights those steps read (found by one
    gradient probe); they alone are this module's parameters and state, so a checkpoint holds
    the moved weights and nothing of the frozen rest.
    """

    _graph: Any  # the backbone copy the tail runs on (not a registered submodule)

    def __init__(self, backbone: str, source: str, target: str) -> None:
        super().__init__()
        with torch.inference_mode(False):  # weights that can train, even if built inside it
            graph, size = _graph_of(backbone)
        inputs = list(graph.ir.inputs)
        plan = graph.plan((target,))
        cuts = dict((name, i) for i, name in plan.program.cuts(inputs[0], len(plan.steps),
                                                              lambda n: True))
        if source not in cuts:
            raise InvalidArgument(f"cannot train '{backbone}' from '{source}' to '{target}': "
                                  f"'{source}' is not the only value carried on at its step")
        self.source, self.target, self._start = source, target, cuts[source] + 1
        object.__setattr__(self, "_graph", graph)  # hidden: its frozen weights are not ours
        with torch.no_grad():
            probe = graph.forward_nodes(torch.full((1, 3, size, size), 128.0), (source,))[source]
        for p in graph.parameters():
            p.requires_grad_(True)
        with torch.inference_mode(False), torch.enable_grad():  # built inside no_grad too
            self._run(probe.clone()).sum().backward()
        moving = {name: p for name, p in graph.named_parameters() if p.grad is not None}
        for p in graph.parameters():
            p.requires_grad_(False)
            p.grad = None
        if not moving:
            raise InvalidArgument(f"no weights between '{source}' and '{target}' in '{backbone}'")
        self.backbone = backbone
        self.weights = nn.ParameterDict({_key(n): p for n, p in moving.items()})
        for p in self.weights.values():
            p.requires_grad_(True)

    def _run(self, middle: torch.Tensor) -> torch.Tensor:
        plan = self._graph.plan((self.target,))
        env = {self.source: plan.enter(self.source, middle)}
        plan.program.execute(env, self._start, None, {self.target})
        out: torch.Tensor = plan.leave(self.target, env[self.target])
        return out

    def forward(self, middle: torch.Tensor) -> torch.Tensor:
        return self._run(middle.float())

    def _apply(self, fn: Any, recurse: bool = True) -> BackboneTail:
        self._graph._apply(fn)  # the frozen rest follows .to() with the moving weights
        super()._apply(fn, recurse)
        return self

    @torch.no_grad()
    def relative_change(self) -> dict[str, float]:
        """‖W − W₀‖ / ‖W₀‖ of every moving weight against the pretrained backbone's: how far
        the trial let the features move."""
        pretrained, _ = _graph_of(self.backbone)
        start = {_key(n): p for n, p in pretrained.named_parameters()}
        return {k: float((w - start[k]).norm() / start[k].norm().clamp_min(1e-12))
                for k, w in self.weights.items()}

