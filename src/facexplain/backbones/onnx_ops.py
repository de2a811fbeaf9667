"""The ONNX op set of the ONNX front end: one torch function per ONNX op type.

Each op takes its inputs (None for an omitted optional one) and its decoded attributes; the
table ``OPS`` is what ``OnnxGraph`` accepts, and an op outside it fails at build time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from facexplain.backbones.padding import same_pads, split_pads

Args = list[torch.Tensor | None]
Attrs = dict[str, Any]
OpFn = Callable[[Args, Attrs], torch.Tensor | tuple[torch.Tensor, ...]]


class UnsupportedOnnxGraph(ValueError):
    """The graph uses an op (or an op variant) this executor does not implement."""


def _req(args: Args, i: int) -> torch.Tensor:
    t = args[i] if i < len(args) else None
    if t is None:
        raise UnsupportedOnnxGraph(f"missing required input #{i}")
    return t


def _ints(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _explicit_pads(x: torch.Tensor, kernel: Sequence[int], a: Attrs) -> list[int]:
    """ONNX pads as [begin..., end...]; resolves auto_pad SAME_* from the input size."""
    n = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        return list(a.get("pads", [0] * 2 * n)) if auto == "NOTSET" else [0] * 2 * n
    pairs = [same_pads(size, k, s, d, odd_after=auto == "SAME_UPPER")
             for size, k, s, d in zip(x.shape[2:], kernel, a.get("strides", [1] * n),
                                      a.get("dilations", [1] * n), strict=True)]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _pad_for(x: torch.Tensor, pads: list[int], value: float = 0.0) -> tuple[torch.Tensor, Any]:
    n = len(pads) // 2
    return split_pads(x, pads[:n], pads[n:], value)


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _conv(args: Args, a: Attrs) -> torch.Tensor:
    x, w = _req(args, 0), _req(args, 1)
    bias = args[2] if len(args) > 2 else None
    n = w.dim() - 2
    x, padding = _pad_for(x, _explicit_pads(x, w.shape[2:], a))
    return _CONV[n](x, w, bias, tuple(a.get("strides", [1] * n)), padding,
                    tuple(a.get("dilations", [1] * n)), int(a.get("group", 1)))


def _batchnorm(args: Args, a: Attrs) -> torch.Tensor:
    x, scale, bias, mean, var = (_req(args, i) for i in range(5))
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, float(a.get("epsilon", 1e-5)))


def _prelu(args: Args, a: Attrs) -> torch.Tensor:
    x, slope = _req(args, 0), _req(args, 1)
    # ONNX broadcasts the slope numpy-style; F.prelu wants one slope per channel (dim 1).
    if slope.numel() == 1:
        return F.prelu(x, slope.reshape(1))
    if x.dim() >= 2 and slope.dim() == x.dim() - 1 and all(s == 1 for s in slope.shape[1:]):
        return F.prelu(x, slope.reshape(-1))
    return torch.where(x >= 0, x, x * slope)


def _gemm(args: Args, a: Attrs) -> torch.Tensor:
    x, w = _req(args, 0), _req(args, 1)
    c = args[2] if len(args) > 2 else None
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if a.get("transA", 0):
        x = x.t()
    if alpha == 1.0 and beta == 1.0 and a.get("transB", 0):
        return F.linear(x, w, c)
    y = alpha * (x @ (w.t() if a.get("transB", 0) else w))
    return y if c is None else y + beta * c


def _reshape(args: Args, a: Attrs) -> torch.Tensor:
    x, shape = _req(args, 0), _ints(_req(args, 1))
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _flatten(args: Args, a: Attrs) -> torch.Tensor:
    x = _req(args, 0)
    axis = int(a.get("axis", 1)) % (x.dim() + 1) if x.dim() else 0
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _pool(kind: str) -> OpFn:
    def run(args: Args, a: Attrs) -> torch.Tensor:
        x = _req(args, 0)
        kernel = list(a["kernel_shape"])
        n = len(kernel)
        if n != 2 or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise UnsupportedOnnxGraph(f"{kind} variant (only 2-D, floor mode, no dilation)")
        fill = -math.inf if kind == "MaxPool" else 0.0
        x, padding = _pad_for(x, _explicit_pads(x, kernel, a), fill)
        strides = a.get("strides", [1] * n)
        if kind == "MaxPool":
            return F.max_pool2d(x, kernel, strides, padding)
        return F.avg_pool2d(x, kernel, strides, padding,
                            count_include_pad=bool(a.get("count_include_pad", 0)))

    return run


def _clip(args: Args, a: Attrs) -> torch.Tensor:
    lo = args[1] if len(args) > 1 and args[1] is not None else a.get("min")
    hi = args[2] if len(args) > 2 and args[2] is not None else a.get("max")
    return torch.clamp(_req(args, 0), lo, hi)


def _constant(args: Args, a: Attrs) -> torch.Tensor:
    if "value" not in a:
        raise UnsupportedOnnxGraph("Constant without a 'value' tensor")
    value: torch.Tensor = a["value"]
    return value


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpFn:
    return lambda args, a: fn(_req(args, 0), _req(args, 1))


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> OpFn:
    return lambda args, a: fn(_req(args, 0))


OPS: dict[str, OpFn] = {
    "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "PRelu": _prelu,
    "Relu": _unary(F.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Clip": _clip,
    "Identity": _unary(lambda x: x),
    "Dropout": _unary(lambda x: x),  # inference: identity; the optional mask output is unused
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "MatMul": _binary(torch.matmul),
    "Gemm": _gemm,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": lambda args, a: _req(args, 0).permute(
        a.get("perm", list(reversed(range(_req(args, 0).dim()))))),
    "Concat": lambda args, a: torch.cat([t for t in args if t is not None], int(a["axis"])),
    "GlobalAveragePool": _unary(lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)),
    "MaxPool": _pool("MaxPool"),
    "AveragePool": _pool("AveragePool"),
    "Softmax": lambda args, a: torch.softmax(_req(args, 0), int(a.get("axis", -1))),
    "Constant": _constant,
}
