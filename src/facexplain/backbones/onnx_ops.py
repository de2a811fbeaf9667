"""The ONNX op set of the ONNX front end: how each ONNX node becomes an IR node.

IR op kinds are ONNX's own names, so most nodes carry over as they are; the translators below
resolve what the IR keeps as attributes (a reshape's shape, a clip's bounds: constants by
then), drop optional outputs and inputs that inference does not use, and turn a conv or gemm
bias into a fused ``BiasAdd``. ``SUPPORTED`` is what ``OnnxGraph`` accepts; an op outside it
fails at build time, naming the op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from facexplain.backbones import ir

Attrs = dict[str, Any]
Consts = Mapping[str, torch.Tensor]
Translate = Callable[[str, list[str], Attrs, Consts], ir.Node]


class UnsupportedOnnxGraph(ValueError):
    """The graph uses an op (or an op variant) this executor does not implement."""


def _const(consts: Consts, inputs: list[str], i: int, what: str) -> torch.Tensor | None:
    """Constant input ``i`` (None if omitted); a runtime value there is unsupported."""
    if i >= len(inputs) or not inputs[i]:
        return None
    if inputs[i] not in consts:
        raise UnsupportedOnnxGraph(f"{what} '{inputs[i]}' must be a constant")
    return consts[inputs[i]]


def _biased(op: str, extra: Attrs) -> Translate:
    """Conv/Gemm: the optional third input (bias) becomes a fused BiasAdd."""

    def run(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
        attrs = {**a, **extra}
        if attrs.get("auto_pad") == "VALID":
            attrs["auto_pad"], attrs["pads"] = "NOTSET", None
        if len(ins) > 2 and ins[2]:
            return ir.Node(name, op, ins[:3], {**attrs, "fused_ops": ["BiasAdd"]})
        return ir.Node(name, op, ins[:2], attrs)

    return run


def _clip(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
    lo, hi = _const(consts, ins, 1, "Clip min"), _const(consts, ins, 2, "Clip max")
    bounds = [a.get(k) if t is None else float(t.reshape(())) for k, t in
              (("min", lo), ("max", hi))]
    return ir.Node(name, "Clip", ins[:1], {"lo": bounds[0], "hi": bounds[1]})


def _reshape(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
    shape = _const(consts, ins, 1, "Reshape shape")
    if shape is None:
        raise UnsupportedOnnxGraph(f"Reshape '{name}' without a shape")
    return ir.Node(name, "Reshape", ins[:1], {"shape": [int(v) for v in shape.reshape(-1)],
                                              "allowzero": int(a.get("allowzero", 0))})


def _same(op: str, n_inputs: int, defaults: Attrs | None = None) -> Translate:
    return lambda name, ins, a, consts: ir.Node(name, op, ins[:n_inputs], {**(defaults or {}),
                                                                           **a})


SUPPORTED: dict[str, Translate] = {
    "Conv": _biased("Conv", {"weight_format": "OIHW"}),
    "Gemm": _biased("Gemm", {}),
    "BatchNormalization": _same("BatchNormalization", 5, {"epsilon": 1e-5}),
    "Clip": _clip,
    "Reshape": _reshape,
    "Dropout": _same("Identity", 1),  # inference: identity; the optional mask is not computed
    **{op: _same(op, 1) for op in ("Relu", "Sigmoid", "Tanh", "Identity", "GlobalAveragePool",
                                   "MaxPool", "AveragePool")},
    **{op: _same(op, 2) for op in ("PRelu", "Add", "Sub", "Mul", "Div", "MatMul")},
    "Flatten": _same("Flatten", 1, {"axis": 1}),
    "Transpose": _same("Transpose", 1, {"perm": None}),
    "Concat": lambda name, ins, a, consts: ir.Node(name, "Concat", [i for i in ins if i], a),
    "Softmax": _same("Softmax", 1, {"axis": -1}),
}
