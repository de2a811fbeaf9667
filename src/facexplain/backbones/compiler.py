"""Compile the part of an IR graph that some requested nodes need into a torch ``Plan``.

Affine ops that follow a convolution (batch-norm scale/shift, bias) and the activation after it
are folded into the convolution for speed, unless a requested node would disappear by that;
the ``max(0,x) + a*min(0,x)`` spelling of PReLU becomes one step. Plans are compiled from the
current weights, so they are rebuilt when the weights change (see ``GraphModule.plan``). Both
front ends (ONNX, TF.js) compile through here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from facexplain.backbones import ir
from facexplain.backbones.base import unknown_nodes
from facexplain.backbones.executor import Program
from facexplain.backbones.lowering import Const, Lowering
from facexplain.backbones.steps import ACT_OPS, PLAIN, AffineStep, ConvStep, Info, Plan
from facexplain.backbones.tfjs_format import GraphFormatError


class Compiler(Lowering):
    """Turns the sub-graph that ``targets`` need into a list of torch steps."""

    def __init__(self, graph: ir.Graph, const: Const, targets: Sequence[str],
                 fuse: bool = True, channels_last: bool = True) -> None:
        super().__init__(graph, const, targets, fuse)
        self.channels_last = channels_last
        if self.fuse:
            self._rewrite_prelu()

    def _order(self) -> list[str]:
        order: list[str] = []
        mark: dict[str, int] = {}
        leaves = {*self.graph.constants, *self.graph.inputs}

        def leaf(name: str) -> bool:
            if name in leaves and name not in mark:
                mark[name] = 2
                order.append(name)
            return name in leaves

        for target in self.targets:
            if leaf(target):
                continue
            if target not in self.nodes:
                raise unknown_nodes([target], list(self.nodes))
            if mark.get(target) == 2:
                continue
            mark[target] = 1
            stack = [(target, 0)]
            while stack:
                name, i = stack[-1]
                ins = self.nodes[name].inputs
                if i < len(ins):
                    stack[-1] = (name, i + 1)
                    child = ins[i]
                    if leaf(child):
                        continue
                    if child not in self.nodes:
                        raise GraphFormatError(f"node '{name}' reads unknown node '{child}'")
                    state = mark.get(child)
                    if state is None:
                        mark[child] = 1
                        stack.append((child, 0))
                    elif state == 1:
                        raise GraphFormatError(f"the graph has a cycle through '{child}'")
                else:
                    stack.pop()
                    mark[name] = 2
                    order.append(name)
        return order

    def _op(self, name: str) -> str:
        node = self.nodes.get(name)
        return "" if node is None else node.op

    def _const_value(self, name: str) -> torch.Tensor | None:
        return self.const(name) if name in self.graph.constants else None

    def _is_const_scalar(self, name: str, value: float) -> bool:
        c = self._const_value(name)
        return c is not None and c.numel() == 1 and float(c.detach().reshape(())) == value

    def _rewrite_prelu(self) -> None:
        """max(0, x) + alpha * min(0, x) (how converters spell PReLU) -> one Prelu node."""
        for node in list(self.nodes.values()):
            if node.op != "Add" or len(node.inputs) != 2:
                continue
            for a_name, b_name in (node.inputs, node.inputs[::-1]):
                found = self._match_prelu(a_name, b_name)
                if found is not None:
                    x, alpha, dropped = found
                    self.nodes[node.name] = ir.Node(node.name, "PRelu", [x, alpha])
                    for name in dropped:
                        for ref in self.nodes[name].inputs:
                            self.consumers[ref] -= 1
                        del self.nodes[name]
                    self.consumers[x] = self.consumers.get(x, 0) + 1
                    self.consumers[alpha] = self.consumers.get(alpha, 0) + 1
                    break

    def _match_prelu(self, a_name: str, b_name: str) -> tuple[str, str, list[str]] | None:
        a, b = self.nodes.get(a_name), self.nodes.get(b_name)
        if a is None or b is None or a.op != "Max" or b.op != "Mul":
            return None
        xs = [n for n in a.inputs if not self._is_const_scalar(n, 0.0)]
        if len(a.inputs) != 2 or len(xs) != 1:
            return None
        x = xs[0]
        mins = [n for n in b.inputs if self._op(n) == "Min"]
        if len(b.inputs) != 2 or len(mins) != 1:
            return None
        m_name = mins[0]
        alpha = b.inputs[1] if b.inputs[0] == m_name else b.inputs[0]
        m = self.nodes[m_name]
        if alpha not in self.graph.constants or x not in m.inputs:
            return None
        if not any(self._is_const_scalar(n, 0.0) for n in m.inputs if n != x):
            return None
        if not all(self._private(n) for n in (a_name, b_name, m_name)):
            return None
        return x, alpha, [a_name, b_name, m_name]

    def compile(self) -> Plan:
        for name in self._order():
            if name in self.graph.constants:
                value = self.const(name)
                self.info[name] = Info(PLAIN, value.dim(), value)
                continue
            if name in self.graph.inputs:
                rank = self.graph.inputs[name]
                self.info[name] = Info(self.spatial if rank == 4 else PLAIN, rank)
                continue
            node = self.nodes[name]
            if self.fuse and self._try_fold(node):
                continue
            step, info = self._build(node)
            self.steps.append(step)
            self.producer[step.name] = step
            self.info[name] = info
        if self.channels_last:  # oneDNN's NHWC kernels: up to ~1.5x faster on CPU
            for step in self.steps:
                if isinstance(step, ConvStep) and step.weight.dim() == 4:
                    step.weight = step.weight.contiguous(memory_format=torch.channels_last)
        return self._finish()

    def _finish(self) -> Plan:
        consts = {t: c for t in self.targets if (c := self.info[t].const) is not None}
        values = {n: i for n, i in self.info.items() if i.const is None}
        return Plan(Program(list(self.steps)), consts, {t: self.info[t] for t in self.targets},
                    values, nhwc=self.graph.layout == ir.NHWC)

    def _runtime_inputs(self, node: ir.Node) -> list[str]:
        return [n for n in node.inputs if self.info[n].const is None]

    def _try_fold(self, node: ir.Node) -> bool:
        """Fold ``node`` into the convolution/dense step that produces its only runtime input."""
        runtime = self._runtime_inputs(node)
        if len(runtime) != 1:
            return False
        src = runtime[0]
        step = self.producer.get(src)
        if not isinstance(step, AffineStep) or not self._private(src):
            return False
        c_names = [n for n in node.inputs if n != src]
        ok = False
        op = node.op
        if op in ("Mul", "Add", "Sub") and len(c_names) == 1:
            c = self._per_channel(c_names[0], step)
            if c is not None and op == "Mul":
                ok = step.scale(c)
            elif c is not None and op == "Sub":
                ok = node.inputs[0] == src and step.shift(-c)
            elif c is not None:
                ok = step.shift(c)
        elif op in ("Min", "Max") and len(c_names) == 1:
            c = self.info[c_names[0]].const
            if c is not None and c.numel() == 1 and c.is_floating_point():
                v = float(c.detach().reshape(()))
                ok = step.clamp(None, v) if op == "Min" else step.clamp(v, None)
        elif op == "BatchNormalization" and node.inputs[0] == src:
            bn = self._batchnorm_affine(node)
            ok = bn is not None and step.scale(bn[0]) and step.shift(bn[1])
        elif op in ACT_OPS:
            act = self._activation(node, [op], node.inputs[1:], step)
            ok = act is not None and (
                step.clamp(act.lo, act.hi) if act.kind == "clamp" else step.activate(act))
        if not ok:
            return False
        del self.producer[src]
        step.name = node.name
        self.producer[node.name] = step
        self.info[node.name] = self.info[src]
        return True
