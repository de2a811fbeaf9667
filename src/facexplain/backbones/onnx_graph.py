"""Run an ONNX graph as a differentiable torch module, with every node output reachable by name.

Why not onnx2torch: it needs torchvision, and explanations need intermediate maps by their graph
names. The front end is deliberately small: initializers (and anything computable from them
alone, e.g. weight ``Reshape`` or ``Constant`` nodes) become frozen parameters at build time,
BatchNorm is folded into the preceding Conv where nothing else reads the Conv output, and the
remaining nodes run in the file's (topological) order on the shared executor core. Unsupported
ops fail at build time, naming the op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from facexplain.backbones.base import Stage
from facexplain.backbones.executor import Env, GraphExecutor, Program, Step, Value
from facexplain.backbones.onnx_ops import OPS, Attrs, UnsupportedOnnxGraph

__all__ = ["OnnxGraph", "UnsupportedOnnxGraph"]


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return torch.from_numpy(np.array(numpy_helper.to_array(value)))
    return value


class _Node(Step):
    """One ONNX node as an executor step (constant inputs are read from the environment)."""

    def __init__(self, op: str, name: str, inputs: list[str], outputs: list[str],
                 attrs: Attrs) -> None:
        self.op = op
        self.name = name
        self.inputs = inputs
        self.outs = outputs
        self.attrs = attrs

    @property
    def outputs(self) -> list[str]:
        return self.outs

    def run(self, args: list[Value]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return OPS[self.op](args, self.attrs)


class OnnxGraph(GraphExecutor):
    """An ONNX graph as an ``nn.Module``; ``forward_nodes`` returns any node outputs by name.

    ``fold_batchnorm`` merges a BatchNormalization into the Conv feeding it when that Conv's
    output has no other reader (its name then disappears, unless listed in ``keep``); the
    folded weights are the parameters. ``channels_last`` stores 4-D weights and runs 4-D inputs
    in NHWC memory order, which is markedly faster for depthwise convolutions on CPU.
    """

    def __init__(self, model: onnx.ModelProto | str | Path, *, fold_batchnorm: bool = True,
                 channels_last: bool = False, keep: Iterable[str] = ()) -> None:
        super().__init__()
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
        graph = proto.graph
        consts: dict[str, torch.Tensor] = {
            i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in graph.initializer
        }
        nodes = [_Node(n.op_type, n.name, list(n.input), list(n.output),
                       {a.name: _attr_value(a) for a in n.attribute}) for n in graph.node]
        unsupported = sorted({n.op for n in nodes if n.op not in OPS})
        if unsupported:
            raise UnsupportedOnnxGraph(f"ONNX ops not supported by OnnxGraph: {unsupported}")
        self.input_names = [i.name for i in graph.input if i.name not in consts]
        self.output_names = [o.name for o in graph.output]
        self.channels_last = channels_last
        nodes = self._fold_constants(nodes, consts)
        self.folded: set[str] = set()
        if fold_batchnorm:
            nodes = self._fold_batchnorm(nodes, consts, set(keep) | set(self.output_names))
        self.nodes = nodes
        self.program = Program(list(nodes))
        self._names = tuple(o for n in nodes for o in n.outputs if o)
        self._producer = {o: i for i, n in enumerate(nodes) for o in n.outputs if o}
        stats = {i for n in nodes if n.op == "BatchNormalization" for i in n.inputs[3:5]}
        self.register_weights(consts, channels_last, stats)

    @staticmethod
    def _fold_constants(nodes: list[_Node], consts: dict[str, torch.Tensor]) -> list[_Node]:
        """Evaluate nodes that read only constants once, now (weight reshapes, Constant)."""
        rest = []
        with torch.no_grad():
            for n in nodes:
                if all(not i or i in consts for i in n.inputs):
                    out = n.run([consts[i] if i else None for i in n.inputs])
                    outs = out if isinstance(out, tuple) else (out,)
                    consts.update({name: t for name, t in zip(n.outputs, outs, strict=False)})
                else:
                    rest.append(n)
        return rest

    def _fold_batchnorm(self, nodes: list[_Node], consts: dict[str, torch.Tensor],
                        keep: set[str]) -> list[_Node]:
        """Conv -> BN becomes one Conv with scaled weights; only where the result is identical."""
        readers: dict[str, int] = {}
        for n in nodes:
            for i in n.inputs:
                readers[i] = readers.get(i, 0) + 1
        producer = {n.outputs[0]: n for n in nodes if n.outputs}
        dropped: set[int] = set()
        for bn in nodes:
            conv = producer.get(bn.inputs[0]) if bn.op == "BatchNormalization" else None
            if (conv is None or conv.op != "Conv" or readers[conv.outputs[0]] != 1
                    or conv.outputs[0] in keep or len(bn.outputs) > 1
                    or not all(i in consts for i in conv.inputs[1:] + bn.inputs[1:5] if i)):
                continue
            w = consts[conv.inputs[1]].double()
            scale, beta, mean, var = (consts[i].double() for i in bn.inputs[1:5])
            has_bias = len(conv.inputs) > 2 and conv.inputs[2]
            bias = consts[conv.inputs[2]].double() if has_bias else torch.zeros_like(mean)
            factor = scale / torch.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
            stem = conv.outputs[0]
            consts[stem + "::w"] = (w * factor.reshape(-1, *[1] * (w.dim() - 1))).float()
            consts[stem + "::b"] = (beta + (bias - mean) * factor).float()
            conv.inputs = [conv.inputs[0], stem + "::w", stem + "::b"]
            self.folded.add(stem)
            conv.outs = list(bn.outputs)
            dropped.add(id(bn))
        used = {i for n in nodes if id(n) not in dropped for i in n.inputs}
        for name in [c for c in consts if c not in used]:
            del consts[name]
        return [n for n in nodes if id(n) not in dropped]

    def node_names(self) -> tuple[str, ...]:
        """Every node output that survives folding, in execution order."""
        return self._names

    def forward_nodes(self, inputs: torch.Tensor | Mapping[str, torch.Tensor],
                      nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run the graph just far enough to produce ``nodes`` (output or intermediate names)."""
        if isinstance(inputs, torch.Tensor):
            if len(self.input_names) != 1:
                raise ValueError(f"graph has inputs {self.input_names}; pass a mapping")
            inputs = {self.input_names[0]: inputs}
        folded = set(nodes) & self.folded
        hint = f" (folded into a Conv; build with keep={sorted(folded)})" if folded else ""
        self.check_nodes(nodes, [*self._attr_of, *inputs], hint)
        last = max((self._producer[n] for n in nodes if n in self._producer), default=-1)
        env = self.program.execute(self._env(inputs), 0, last + 1, nodes)
        return {n: env[n] for n in nodes}  # type: ignore[misc]

    def _env(self, inputs: Mapping[str, torch.Tensor]) -> Env:
        env: Env = {"": None}
        env.update(self.weights())
        env.update({name: self._enter(name, t) for name, t in inputs.items()})
        return env

    def _enter(self, name: str, t: torch.Tensor) -> torch.Tensor:
        if self.channels_last and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def stages(self, output: str) -> list[Stage]:
        """The nodes up to ``output`` as a chain of stages, cut where one tensor is live."""
        if output not in self._producer or len(self.input_names) != 1:
            raise KeyError(f"cannot split the graph at '{output}'")
        stop = self._producer[output] + 1
        source = self.input_names[0]
        cuts = self.program.cuts(source, stop, lambda n: n not in self._attr_of)
        return self.program.chain(source, output, stop, cuts, lambda: self._env({}),
                                  self._enter, lambda name, t: t)

    def forward(self, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The graph's first output."""
        return self.forward_nodes(inputs, self.output_names[:1])[self.output_names[0]]
