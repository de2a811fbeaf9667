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


def _axes(consts: Consts, ins: list[str], a: Attrs, i: int, what: str) -> list[int] | None:
    """Axes from the attribute (older opsets) or from constant input ``i`` (newer ones)."""
    if a.get("axes") is not None:
        return [int(v) for v in a["axes"]]
    t = _const(consts, ins, i, f"{what} axes")
    return None if t is None else [int(v) for v in t.reshape(-1)]


def _reduce(op: str) -> Translate:
    def run(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
        axes = _axes(consts, ins, a, 1, op)
        if not axes and a.get("noop_with_empty_axes"):
            return ir.Node(name, "Identity", ins[:1])
        return ir.Node(name, op, ins[:1], {"axes": axes or None,
                                           "keepdims": int(a.get("keepdims", 1))})

    return run


def _pad(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
    mode = {"edge": "replicate"}.get(str(a.get("mode", "constant")), str(a.get("mode", "constant")))
    if len(ins) > 3 and ins[3]:
        raise UnsupportedOnnxGraph(f"Pad '{name}' with an axes input")
    value_t = _const(consts, ins, 2, "Pad value")
    value = float(a.get("value", 0.0)) if value_t is None else float(value_t.reshape(()))
    if a.get("pads") is None and len(ins) > 1 and ins[1] and ins[1] not in consts:
        return ir.Node(name, "PadDynamic", ins[:2], {"mode": mode, "value": value})
    pads_t = _const(consts, ins, 1, "Pad pads")
    pads = [int(p) for p in (a["pads"] if pads_t is None else pads_t.reshape(-1))]
    n = len(pads) // 2
    return ir.Node(name, "Pad", ins[:1], {"pads": list(zip(pads[:n], pads[n:], strict=True)),
                                          "mode": mode, "value": value})


def _reshape_any(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
    """Reshape by a constant shape, or (shape computed at run time, e.g. from the batch size)
    by the runtime value."""
    if len(ins) > 1 and ins[1] and ins[1] not in consts:
        return ir.Node(name, "ReshapeDynamic", ins[:2], {"allowzero": int(a.get("allowzero", 0))})
    return _reshape(name, ins, a, consts)


def _squeeze(op: str) -> Translate:
    def run(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
        axes = _axes(consts, ins, a, 1, op)
        if not axes:
            raise UnsupportedOnnxGraph(f"{op} '{name}' without explicit axes")
        return ir.Node(name, op, ins[:1], {"axes": axes})

    return run


# ONNX TensorProto data types -> the IR's dtype names (Cast)
_ONNX_DTYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 11: "float64"}


def _cast(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
    to = int(a.get("to", 1))
    if to not in _ONNX_DTYPES:
        raise UnsupportedOnnxGraph(f"Cast '{name}' to ONNX data type {to}")
    return ir.Node(name, "Cast", ins[:1], {"to": _ONNX_DTYPES[to]})


def _slice(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
    if "starts" in a:  # opset < 10: attributes
        attrs: Attrs = {k: [int(v) for v in a[k]] for k in ("starts", "ends", "axes") if k in a}
        return ir.Node(name, "Slice", ins[:1], attrs)
    return ir.Node(name, "Slice", [i for i in ins[:5]], {})


def _all(op: str, defaults: Attrs | None = None) -> Translate:
    """Every (non-empty) input, attributes as given: the generic runtime ops."""
    return lambda name, ins, a, consts: ir.Node(name, op, [i for i in ins if i],
                                                {**(defaults or {}), **a})


def _binary_only(op: str) -> Translate:
    def run(name: str, ins: list[str], a: Attrs, consts: Consts) -> ir.Node:
        if len(ins) != 2:
            raise UnsupportedOnnxGraph(f"{op} '{name}' with {len(ins)} inputs (2 supported)")
        return ir.Node(name, op, ins, a)

    return run


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
    **{op: _reduce(op) for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                                  "ReduceL2", "ReduceSumSquare")},
    "Pad": _pad,
    "Cast": _cast,
    "Squeeze": _squeeze("Squeeze"),
    "Unsqueeze": _squeeze("Unsqueeze"),
    "LeakyRelu": _same("LeakyRelu", 1, {"alpha": 0.01}),
    "Slice": _slice,
    **{op: _same(op, 1) for op in ("Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor",
                                   "Ceil", "Erf", "GlobalMaxPool", "Shape", "HardSwish")},
    "HardSigmoid": _same("HardSigmoid", 1, {"alpha": 0.2, "beta": 0.5}),
    **{op: _same(op, 2) for op in ("Pow", "Equal", "Less", "Greater")},
    **{op: _all(op) for op in ("Sum", "Where", "Expand", "Range")},
    **{op: _binary_only(op) for op in ("Max", "Min")},
    "Gather": _same("Gather", 2, {"axis": 0}),
    "ConstantOfShape": _same("ConstantOfShape", 1),
}
SUPPORTED["Reshape"] = _reshape_any
