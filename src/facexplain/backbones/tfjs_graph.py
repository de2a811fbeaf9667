"""Run a TensorFlow.js graph model (model.json + weight shards) as a differentiable torch module.

TF.js graph models are frozen TensorFlow GraphDefs in JSON with the weights in binary shards.
Executing the graph in torch (instead of porting each network by hand) keeps the original
computation, node for node, and lets any node be read or hooked by its TF name. The pieces:
``tfjs_format`` reads the files, ``tfjs_compiler``/``tfjs_lowering`` turn the sub-graph some
requested nodes need into steps (``tfjs_steps``), and ``executor`` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facexplain.backbones.base import Stage
from facexplain.backbones.executor import Env, GraphExecutor
from facexplain.backbones.padding import same_pads
from facexplain.backbones.tfjs_compiler import Compiler
from facexplain.backbones.tfjs_format import (
    GraphFormatError,
    GraphModel,
    UnsupportedOp,
    parse_graph_model,
)
from facexplain.backbones.tfjs_steps import Plan

__all__ = ["GraphFormatError", "TFJSGraphModule", "UnsupportedOp", "parse_graph_model",
           "same_pads"]

_MAX_PLANS = 8


def _empty_env() -> Env:
    return {}


class TFJSGraphModule(GraphExecutor):
    """Executes a parsed TF.js graph in torch; any node's value can be asked for by name.

    4-D inputs are fed NCHW (TF's NHWC axes translated inside), 4-D outputs come back NCHW,
    other tensors in TF's own layout. Float constants are frozen parameters under their TF
    names, so ``state_dict``, ``.to()`` and re-initialisation see them. Compiled plans (one per
    set of requested nodes) hold folded copies of the weights: they are rebuilt when a weight
    changes in place, after ``.to()``, and on every call while a weight requires grad (so
    gradients reach the parameters).
    """

    def __init__(self, graph: GraphModel, fuse: bool = True, channels_last: bool = True) -> None:
        super().__init__()
        self.graph_def = graph
        self.fuse = fuse
        self.channels_last = channels_last
        stats = {i for n in graph.nodes.values() if n.op.startswith("FusedBatchNorm")
                 for i in n.inputs[3:5]}
        self.register_weights({name: torch.from_numpy(np.array(value))
                               for name, value in graph.weights.items()}, statistics=stats)
        self._names = tuple(n.name for n in graph.nodes.values()
                            if n.op not in ("Const", "Placeholder"))
        self._plans: dict[tuple[str, ...], Plan] = {}

    @classmethod
    def from_file(cls, model_json: Path, fuse: bool = True, channels_last: bool = True
                  ) -> TFJSGraphModule:
        return cls(parse_graph_model(model_json), fuse=fuse, channels_last=channels_last)

    def const(self, name: str) -> torch.Tensor:
        return self.weight(name)

    def node_names(self) -> tuple[str, ...]:
        """Every computed node (constants and placeholders left out), in file order."""
        return self._names

    def _apply(self, *args: Any, **kwargs: Any) -> TFJSGraphModule:
        self._plans = {}  # plans hold folded copies of the weights: rebuild on .to()/.double()
        super()._apply(*args, **kwargs)
        return self

    def _compile(self, outputs: tuple[str, ...]) -> Plan:
        plan = Compiler(self.graph_def.nodes, self.const, outputs, self.fuse,
                        self.channels_last).compile()
        plan.version = self.weights_version()
        return plan

    def plan(self, outputs: Sequence[str]) -> Plan:
        key = tuple(outputs)
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return self._compile(key)  # differentiable w.r.t. the weights, so not cached
        cached = self._plans.get(key)
        if cached is None or cached.version != self.weights_version():
            if cached is None and len(self._plans) >= _MAX_PLANS:  # each holds weight copies
                del self._plans[next(iter(self._plans))]
            # Normal tensors even when first asked inside inference_mode: a plan compiled there
            # would hold inference tensors that a later gradient pass cannot use.
            with torch.inference_mode(False), torch.no_grad():
                self._plans[key] = self._compile(key)
        return self._plans[key]

    def prepare(self, nodes: Sequence[str]) -> None:
        """Fail now on a missing node or an unsupported op (compiles the plan for ``nodes``)."""
        self.check_nodes(nodes, self.graph_def.placeholders)
        self.plan(nodes)

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Sequence[str]
            ) -> dict[str, torch.Tensor]:
        """Evaluate ``outputs`` given placeholder values (4-D ones NCHW)."""
        plan = self.plan(outputs)
        env: Env = dict(feeds)
        plan.program.execute(env, keep=outputs)
        result: dict[str, torch.Tensor] = {}
        for name in outputs:
            value = plan.consts.get(name)
            if value is None:
                stored = env[name]
                assert stored is not None
                value = plan.leave(name, stored)
            result[name] = value
        return result

    def stages(self, output: str) -> list[Stage]:
        """The steps up to ``output`` as a chain of stages, cut where one 4-D value is live.

        Stages take and return 4-D values NCHW like ``run``; the last returns ``output``. They
        hold the plan compiled from the weights as they are now.
        """
        placeholders = self.graph_def.placeholders
        plan = self.plan((output,))
        if len(placeholders) != 1 or output in plan.consts:
            raise KeyError(f"cannot split the graph at '{output}'")
        stop = len(plan.steps)
        cuts = [(i, name) for i, name in plan.program.cuts(placeholders[0], stop, lambda n: True)
                if plan.values[name].rank == 4]
        return plan.program.chain(placeholders[0], output, stop, cuts, _empty_env, plan.enter,
                                  plan.leave)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        """Single-input graphs: feed ``x`` to the one placeholder, return the named nodes."""
        placeholders = self.graph_def.placeholders
        if len(placeholders) != 1:
            raise ValueError(f"graph has {len(placeholders)} placeholders; use run() with feeds")
        self.check_nodes(nodes, placeholders)
        return self.run({placeholders[0]: x}, nodes)

    def forward(self, x: torch.Tensor, node: str) -> torch.Tensor:
        return self.forward_nodes(x, (node,))[node]
