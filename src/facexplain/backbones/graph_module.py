"""One torch module for any IR graph: weights as parameters, compiled plans, named nodes.

The front ends (``onnx_graph.OnnxGraph``, ``tfjs_graph.TFJSGraphModule``) only build the IR;
this module registers its constants, compiles the sub-graph a set of requested nodes needs
(``compiler.Compiler``: lowering plus fusion), caches the plan, and runs it on the executor core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from facexplain.backbones import ir
from facexplain.backbones.base import Stage
from facexplain.backbones.compiler import Compiler
from facexplain.backbones.executor import Env, GraphExecutor
from facexplain.backbones.steps import Plan

_MAX_PLANS = 8


def _empty_env() -> Env:
    return {}


class GraphModule(GraphExecutor):
    """Executes an IR graph in torch; any node's value can be asked for by name.

    4-D inputs are fed NCHW and 4-D values come back NCHW (an NHWC graph's axes are translated
    inside), other tensors in the graph's own layout. Compiled plans (one per set of requested
    nodes) may hold folded copies of the weights: they are rebuilt when a weight changes in
    place, after ``.to()``, and on every call while a weight requires grad (so gradients reach
    the parameters).
    """

    def __init__(self, graph: ir.Graph, fuse: bool = True, channels_last: bool = True,
                 channels_last_weights: bool = False) -> None:
        super().__init__()
        self.ir = graph
        self.fuse = fuse
        self.channels_last = channels_last
        self.register_weights(graph.constants, channels_last_weights, graph.statistics())
        self.ir.constants = {}  # the registered parameters are the constants from now on
        self._names = tuple(graph.nodes)
        self._plans: dict[tuple[str, ...], Plan] = {}

    def node_names(self) -> tuple[str, ...]:
        """Every computed node (constants and inputs left out), in file order."""
        return self._names

    def forget_plans(self) -> None:
        """Plans hold folded copies of the weights: drop them (the next call recompiles)."""
        self._plans = {}

    def _apply(self, *args: Any, **kwargs: Any) -> GraphModule:
        self._plans = {}  # plans hold folded copies of the weights: rebuild on .to()/.double()
        super()._apply(*args, **kwargs)
        return self

    def _compile(self, outputs: tuple[str, ...]) -> Plan:
        graph = ir.Graph(self.ir.nodes, self.ir.inputs, self.weights(), self.ir.layout)
        plan = Compiler(graph, self.weight, outputs, self.fuse, self.channels_last).compile()
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

    def _hint(self, nodes: Sequence[str]) -> str:
        """Extra words for an unknown-node error (a front end may know why a name is gone)."""
        return ""

    def prepare(self, nodes: Sequence[str]) -> None:
        """Fail now on a missing node or an unsupported op (compiles the plan for ``nodes``)."""
        self.check_nodes(nodes, [*self.ir.inputs, *self._attr_of], self._hint(nodes))
        self.plan(nodes)

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Sequence[str]
            ) -> dict[str, torch.Tensor]:
        """Evaluate ``outputs`` given the input values (4-D ones NCHW)."""
        self.check_nodes(outputs, [*self.ir.inputs, *self._attr_of], self._hint(outputs))
        plan = self.plan(outputs)
        env: Env = {name: plan.enter(name, t) for name, t in feeds.items()}
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
        inputs = list(self.ir.inputs)
        plan = self.plan((output,))
        if len(inputs) != 1 or output in plan.consts or output not in plan.values:
            raise KeyError(f"cannot split the graph at '{output}'")
        stop = len(plan.steps)
        cuts = [(i, name) for i, name in plan.program.cuts(inputs[0], stop, lambda n: True)
                if plan.values[name].rank == 4]
        return plan.program.chain(inputs[0], output, stop, cuts, _empty_env, plan.enter,
                                  plan.leave)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        """Single-input graphs: feed ``x`` to the one input, return the named nodes."""
        inputs = list(self.ir.inputs)
        if len(inputs) != 1:
            raise ValueError(f"graph has inputs {inputs}; use run() with feeds")
        return self.run({inputs[0]: x}, nodes)
