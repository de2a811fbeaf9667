"""Run an ONNX graph as a differentiable torch module, with every node output reachable by name.

Why not onnx2torch: it needs torchvision, and explanations need intermediate maps by their graph
names. This is the ONNX front end: nodes become IR nodes (``onnx_ops``), initializers (and
anything computable from them alone, e.g. weight ``Reshape`` or ``Constant`` nodes, evaluated
once by the shared compiler) become frozen parameters at build time, BatchNorm is folded into
the preceding Conv where nothing else reads the Conv output, and ``graph_module.GraphModule``
compiles and runs the rest, as it does for TF.js graphs. Unsupported ops fail at build time,
naming the op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from facexplain.backbones import ir
from facexplain.backbones.compiler import Compiler
from facexplain.backbones.graph_module import GraphModule
from facexplain.backbones.lowering_onnx import ONNX_OPS
from facexplain.backbones.onnx_dequantize import dequantize_block
from facexplain.backbones.onnx_ops import SUPPORTED, UnsupportedOnnxGraph
from facexplain.backbones.tfjs_format import UnsupportedOp

__all__ = ["OnnxGraph", "UnsupportedOnnxGraph", "fold_batchnorms", "to_ir"]


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return torch.from_numpy(np.array(numpy_helper.to_array(value)))
    return value


def _evaluate(node: ir.Node, consts: dict[str, torch.Tensor]) -> torch.Tensor:
    """A node whose inputs are all constants, run once through the shared compiler."""
    graph = ir.Graph({node.name: node}, {}, {i: consts[i] for i in node.inputs}, ir.NCHW_LAYOUT)
    plan = Compiler(graph, consts.__getitem__, [node.name], fuse=False,
                    channels_last=False).compile()
    env = plan.program.execute({i: consts[i] for i in node.inputs}, keep=[node.name])
    value = env[node.name]
    assert value is not None
    return value


def _constant(attrs: dict[str, Any]) -> torch.Tensor:
    """A Constant node's value, whichever attribute spells it."""
    for key, dtype in (("value", None), ("value_float", torch.float32),
                       ("value_floats", torch.float32), ("value_int", torch.int64),
                       ("value_ints", torch.int64)):
        if key in attrs:
            value = attrs[key]
            return value if dtype is None else torch.tensor(value, dtype=dtype)
    raise UnsupportedOnnxGraph(f"Constant with attributes {sorted(attrs)}")


def _constant_dequantize(graph: onnx.GraphProto) -> bool:
    """True if every DequantizeLinear reads initializers only (quantised weights)."""
    inits = {i.name for i in graph.initializer} | {o for n in graph.node
                                                   if n.op_type == "Constant" for o in n.output}
    return all(i in inits for n in graph.node if n.op_type == "DequantizeLinear"
               for i in n.input if i)


def _dequantize(n: onnx.NodeProto, attrs: dict[str, Any],
                consts: dict[str, torch.Tensor]) -> torch.Tensor:

    ins = [consts[i].numpy() for i in n.input if i]
    zero_point = ins[2] if len(ins) > 2 else None
    w = dequantize_block(ins[0], ins[1], zero_point, int(attrs.get("axis", 1)),
                         int(attrs.get("block_size", 0)))
    return torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))


def _ranks(proto: onnx.ModelProto) -> dict[str, int]:
    """Rank of every value ONNX shape inference can type (empty if inference fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - an optional aid; the rank rules still apply
        return {}
    values = [*inferred.graph.value_info, *inferred.graph.output]
    return {v.name: len(v.type.tensor_type.shape.dim) for v in values
            if v.type.tensor_type.HasField("shape")}


def to_ir(proto: onnx.ModelProto) -> ir.Graph:
    """The ONNX graph as IR (NCHW), with constant sub-graphs evaluated into constants."""
    graph = proto.graph
    consts: dict[str, torch.Tensor] = {
        i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in graph.initializer
    }
    unsupported = sorted({n.op_type for n in graph.node} - {"Constant", *SUPPORTED}
                         - ({"DequantizeLinear"} if _constant_dequantize(graph) else set()))
    if unsupported:
        raise UnsupportedOnnxGraph(f"ONNX ops not supported by OnnxGraph: {unsupported}")
    ranks = _ranks(proto)
    nodes: dict[str, ir.Node] = {}
    with torch.no_grad():
        for n in graph.node:
            attrs = {a.name: _attr_value(a) for a in n.attribute}
            if n.op_type == "Constant":
                consts[n.output[0]] = _constant(attrs)
                continue
            if n.op_type == "DequantizeLinear":  # int8 weights: dequantized once, at build
                consts[n.output[0]] = _dequantize(n, attrs, consts)
                continue
            node = SUPPORTED[n.op_type](n.output[0], list(n.input), attrs, consts)
            if node.op in ONNX_OPS and node.name in ranks:
                node.attrs["_rank"] = ranks[node.name]
            if all(i in consts for i in node.inputs):
                consts[node.name] = _evaluate(node, consts)
            else:
                nodes[node.name] = node
    read = {i for n in nodes.values() for i in n.inputs}  # old exporters list unused inputs
    inputs = {i.name: len(i.type.tensor_type.shape.dim) if i.type.tensor_type.HasField("shape")
              else 4 for i in graph.input if i.name not in consts and i.name in read}
    outputs = [o.name for o in graph.output]
    return ir.Graph(nodes, inputs, consts, ir.NCHW_LAYOUT, outputs)


def fold_batchnorms(graph: ir.Graph, keep: set[str]) -> set[str]:
    """Conv -> BN becomes one Conv with scaled weights where the result is identical.

    Only where nothing else reads the Conv output and it is not in ``keep``; returns the
    names that disappeared. The folded weights are new constants ``<conv>::w``/``::b``.
    """
    readers: dict[str, int] = {}
    for n in graph.nodes.values():
        for i in n.inputs:
            readers[i] = readers.get(i, 0) + 1
    consts = graph.constants
    replaced: dict[str, ir.Node] = {}
    dropped: set[str] = set()
    for bn in graph.nodes.values():
        conv = graph.nodes.get(bn.inputs[0]) if bn.op == "BatchNormalization" else None
        if (conv is None or conv.op != "Conv" or readers[conv.name] != 1 or conv.name in keep
                or conv.attrs.get("fused_ops", ["BiasAdd"]) != ["BiasAdd"]
                or not all(i in consts for i in conv.inputs[1:] + bn.inputs[1:5])):
            continue
        w = consts[conv.inputs[1]].double()
        scale, beta, mean, var = (consts[i].double() for i in bn.inputs[1:5])
        bias = consts[conv.inputs[2]].double() if len(conv.inputs) > 2 else torch.zeros_like(mean)
        factor = scale / torch.sqrt(var + float(bn.attrs["epsilon"]))
        stem = conv.name
        consts[stem + "::w"] = (w * factor.reshape(-1, *[1] * (w.dim() - 1))).float()
        consts[stem + "::b"] = (beta + (bias - mean) * factor).float()
        replaced[stem] = ir.Node(bn.name, "Conv", [conv.inputs[0], stem + "::w", stem + "::b"],
                                 {**conv.attrs, "fused_ops": ["BiasAdd"]})
        dropped.add(bn.name)
    graph.nodes = {(new := replaced.get(name, n)).name: new for name, n in graph.nodes.items()
                   if name not in dropped}
    return set(replaced)


class OnnxGraph(GraphModule):
    """An ONNX graph as an ``nn.Module``; ``forward_nodes`` returns any node outputs by name.

    ``fold_batchnorm`` merges a BatchNormalization into the Conv feeding it when that Conv's
    output has no other reader (its name then disappears, unless listed in ``keep``); the
    folded weights are the parameters. ``channels_last`` stores 4-D weights and runs 4-D inputs
    in NHWC memory order, which is markedly faster for depthwise convolutions on CPU.
    """

    def __init__(self, model: onnx.ModelProto | str | Path, *, fold_batchnorm: bool = True,
                 channels_last: bool = False, keep: Iterable[str] = ()) -> None:
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
        graph = to_ir(proto)
        outputs = set(graph.outputs)
        folded = fold_batchnorms(graph, set(keep) | outputs) if fold_batchnorm else set()
        used = graph.used() | outputs
        graph.constants = {k: v for k, v in graph.constants.items() if k in used}
        super().__init__(graph, fuse=True, channels_last=channels_last,
                         channels_last_weights=channels_last)
        self.input_names = list(graph.inputs)
        self.output_names = list(graph.outputs)
        self.folded = folded
        self.nodes = list(graph.nodes.values())
        try:  # fail at build, not at the first forward, on an op variant the compiler lacks
            with torch.no_grad():
                self._compile(self.node_names())
        except UnsupportedOp as err:
            raise UnsupportedOnnxGraph(str(err)) from None

    def _hint(self, nodes: Sequence[str]) -> str:
        folded = set(nodes) & self.folded
        return f" (folded into a Conv; build with keep={sorted(folded)})" if folded else ""

    def forward_nodes(self, inputs: torch.Tensor | Mapping[str, torch.Tensor],
                      nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run the graph just far enough to produce ``nodes`` (output or intermediate names)."""
        if isinstance(inputs, torch.Tensor):
            return super().forward_nodes(inputs, nodes)
        return self.run(inputs, nodes)

    def forward(self, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The graph's first output."""
        return self.forward_nodes(inputs, self.output_names[:1])[self.output_names[0]]

