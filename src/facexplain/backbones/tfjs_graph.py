"""Run a TensorFlow.js graph model (model.json + weight shards) as a differentiable torch module.

TF.js graph models are frozen TensorFlow GraphDefs in JSON with the weights in binary shards.
Executing the graph in torch (instead of porting each network by hand) keeps the original
computation, node for node, and lets any node be read or hooked by its TF name. This is the
TF.js front end: ``tfjs_format`` reads the files, ``to_ir`` turns the GraphDef into the shared
IR (TF op names become IR op kinds, shape/axis constants become attributes, 4-D values stay
NHWC), and ``graph_module.GraphModule`` compiles and runs it, as it does for ONNX graphs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facexplain.backbones import ir
from facexplain.backbones.graph_module import GraphModule
from facexplain.backbones.padding import same_pads
from facexplain.backbones.tfjs_format import (
    GraphFormatError,
    GraphModel,
    GraphNode,
    UnsupportedOp,
    parse_graph_model,
)

__all__ = ["GraphFormatError", "TFJSGraphModule", "UnsupportedOp", "parse_graph_model",
           "same_pads", "to_ir"]

_CONV = {"Conv2D": "HWIO", "_FusedConv2D": "HWIO", "DepthwiseConv2dNative": "HWCM",
         "FusedDepthwiseConv2dNative": "HWCM", "DepthwiseConv2d": "HWCM"}
_SAME_NAME = {"Sub", "Mul", "Div", "Pow", "SquaredDifference", "Relu", "Elu", "Selu",
              "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Rsqrt", "Square", "Neg", "Abs",
              "Softplus", "Identity"}
_RENAME = {"Add": "Add", "AddV2": "Add", "BiasAdd": "Add", "RealDiv": "Div", "Maximum": "Max",
           "Minimum": "Min", "StopGradient": "Identity", "Snapshot": "Identity",
           "Prelu": "PRelu", "Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax",
           "Min": "ReduceMin", "ConcatV2": "Concat", "MatMul": "Gemm", "_FusedMatMul": "Gemm",
           "FusedBatchNorm": "BatchNormalization", "FusedBatchNormV2": "BatchNormalization",
           "FusedBatchNormV3": "BatchNormalization"}
_CAST = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_BOOL": "bool"}


class _NotExpressible(Exception):
    """A node the IR cannot carry (its reason becomes an ``Unsupported`` node)."""


def _ints(weights: Mapping[str, np.ndarray], name: str) -> list[int]:
    if name not in weights:
        raise _NotExpressible(f"'{name}' must be a constant (shapes/axes computed at run time)")
    return [int(v) for v in np.asarray(weights[name]).reshape(-1).tolist()]


def _nhwc(node: GraphNode) -> None:
    fmt = node.attrs.get("data_format") or "NHWC"
    if fmt != "NHWC":
        raise _NotExpressible(f"node '{node.name}': data_format {fmt} (only NHWC)")


def _conv_attrs(node: GraphNode) -> dict[str, Any]:
    _nhwc(node)
    a = node.attrs
    strides = a.get("strides") or [1, 1, 1, 1]
    dil = a.get("dilations") or [1, 1, 1, 1]
    padding = a.get("padding") or "VALID"
    pads = [0, 0, 0, 0]
    if padding == "EXPLICIT":
        e = a.get("explicit_paddings") or [0] * 8
        pads = [e[2], e[4], e[3], e[5]]  # begins (top, left), ends (bottom, right)
    elif padding not in ("SAME", "VALID"):
        raise _NotExpressible(f"node '{node.name}': padding {padding}")
    return {"weight_format": _CONV[node.op], "strides": [strides[1], strides[2]],
            "dilations": [dil[1], dil[2]], "pads": pads,
            "auto_pad": "SAME_UPPER" if padding == "SAME" else "NOTSET",
            "fused_ops": list(a.get("fused_ops") or []), "alpha": _leaky_alpha(node)}


def _leaky_alpha(node: GraphNode) -> float:
    alpha = node.attrs.get("leakyrelu_alpha", node.attrs.get("alpha"))
    return 0.2 if alpha is None else float(alpha)


def _translate(node: GraphNode, weights: Mapping[str, np.ndarray]) -> ir.Node:
    op, name, ins = node.op, node.name, list(node.inputs)
    if op in _CONV:
        return ir.Node(name, "Conv", ins, _conv_attrs(node))
    if op in ("MatMul", "_FusedMatMul"):
        return ir.Node(name, "Gemm", ins, {"transA": bool(node.attrs.get("transpose_a")),
                                           "transB": bool(node.attrs.get("transpose_b")),
                                           "fused_ops": list(node.attrs.get("fused_ops") or []),
                                           "alpha": 1.0})
    if op.startswith("FusedBatchNorm"):
        _nhwc(node)
        return ir.Node(name, "BatchNormalization", ins[:5],
                       {"epsilon": float(node.attrs.get("epsilon") or 0.0)})
    if op in ("Mean", "Sum", "Max", "Min"):
        return ir.Node(name, _RENAME[op], ins[:1], {"axes": _ints(weights, ins[1]),
                                                    "keepdims": bool(node.attrs.get("keep_dims"))})
    if op in ("Pad", "PadV2", "MirrorPad"):
        flat = _ints(weights, ins[1])
        value = float(np.asarray(weights[ins[2]]).reshape(())) if op == "PadV2" and \
            len(ins) > 2 and ins[2] in weights else 0.0
        mode = "constant"
        if op == "MirrorPad":
            mode = {"REFLECT": "reflect"}.get(str(node.attrs.get("mode")), "")
            if not mode:
                raise _NotExpressible(f"node '{name}': MirrorPad mode {node.attrs.get('mode')}")
        pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
        return ir.Node(name, "Pad", ins[:1], {"pads": pairs, "mode": mode, "value": value})
    if op == "Reshape":
        return ir.Node(name, "Reshape", ins[:1], {"shape": _ints(weights, ins[1]),
                                                  "allowzero": 1})
    if op == "Squeeze":
        return ir.Node(name, "Squeeze", ins, {"axes": node.attrs.get("squeeze_dims") or []})
    if op == "ConcatV2":
        return ir.Node(name, "Concat", ins[:-1], {"axis": _ints(weights, ins[-1])[0]})
    if op == "Softmax":
        return ir.Node(name, "Softmax", ins, {"axis": -1})
    if op == "Cast":
        dst = node.attrs.get("DstT")
        if dst not in _CAST:
            raise _NotExpressible(f"node '{name}': Cast to {dst}")
        return ir.Node(name, "Cast", ins, {"to": _CAST[str(dst)]})
    if op == "Relu6":
        return ir.Node(name, "Clip", ins, {"lo": 0.0, "hi": 6.0})
    if op == "LeakyRelu":
        return ir.Node(name, "LeakyRelu", ins, {"alpha": _leaky_alpha(node)})
    if op in _SAME_NAME or op in _RENAME:
        return ir.Node(name, _RENAME.get(op, op), ins)
    raise _NotExpressible(f"TF.js graph node '{name}' uses op '{op}', which the torch executor "
                          "does not implement")


def to_ir(graph: GraphModel) -> ir.Graph:
    """The GraphDef as IR: constants are the decoded weights, placeholders the inputs (NHWC)."""
    nodes: dict[str, ir.Node] = {}
    inputs: dict[str, int] = {}
    for node in graph.nodes.values():
        if node.op == "Const":
            continue
        if node.op == "Placeholder":
            dims = node.attrs.get("shape") or {}
            inputs[node.name] = (len(dims.get("dim", [])) if isinstance(dims, dict) else 0) or 4
            continue
        try:
            nodes[node.name] = _translate(node, graph.weights)
        except _NotExpressible as why:
            nodes[node.name] = ir.unsupported(node.name, str(why), node.inputs)
    constants = {name: torch.from_numpy(np.array(value)) for name, value in graph.weights.items()}
    return ir.Graph(nodes, inputs, constants, ir.NHWC)


class TFJSGraphModule(GraphModule):
    """Executes a parsed TF.js graph in torch; any node's value can be asked for by name.

    4-D inputs are fed NCHW (TF's NHWC axes translated inside), 4-D outputs come back NCHW,
    other tensors in TF's own layout. Float constants are frozen parameters under their TF
    names, so ``state_dict``, ``.to()`` and re-initialisation see them (see ``GraphModule``).
    """

    def __init__(self, graph: GraphModel, fuse: bool = True, channels_last: bool = True) -> None:
        super().__init__(to_ir(graph), fuse=fuse, channels_last=channels_last)
        self.graph_def = graph

    @classmethod
    def from_file(cls, model_json: Path, fuse: bool = True, channels_last: bool = True
                  ) -> TFJSGraphModule:
        return cls(parse_graph_model(model_json), fuse=fuse, channels_last=channels_last)

    def const(self, name: str) -> torch.Tensor:
        return self.weight(name)

    def forward(self, x: torch.Tensor, node: str) -> torch.Tensor:
        return self.forward_nodes(x, (node,))[node]
