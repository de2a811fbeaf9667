"""Lowering of the shape and layout ops: reductions, padding, reshapes, concat, pooling, ...

Each builder takes the compile in progress (``lowering.Lowering``) and one IR node, and returns
the step with what is known about its output. Ops that see the graph's axes translate them
into the stored NCHW order; ops that see the memory order (reshape, flatten, transpose, squeeze)
first bring their input into the graph's own layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from facexplain.backbones import ir
from facexplain.backbones.padding import same_pads, split_pads
from facexplain.backbones.steps import (
    NCHW,
    PLAIN,
    REDUCE,
    TORCH_TO_TF_AXIS,
    FnStep,
    Info,
    LoweringState,
    PadStep,
    TStep,
)
from facexplain.backbones.tfjs_format import GraphFormatError, UnsupportedOp

Built = tuple[TStep, Info]
Fn = Callable[[list[torch.Tensor]], torch.Tensor]


def _step(lw: LoweringState, node: ir.Node, layout: str | None, fn: Fn, info: Info) -> Built:
    """A one-input step reading ``node.inputs[0]``, converted to ``layout`` (None: as stored)."""
    src = node.inputs[0]
    convert = None if layout is None else lw._need(src, layout)
    return FnStep(node.name, [src], [convert], fn), info


def _reduce(lw: LoweringState, node: ir.Node) -> Built:
    info = lw.info[node.inputs[0]]
    given = node.attrs["axes"]  # None (ONNX, no axes): every axis
    axes = sorted({int(a) % info.rank for a in (range(info.rank) if given is None else given)})
    keep = bool(node.attrs.get("keepdims"))
    reduce = REDUCE[node.op]
    layout = info.layout
    # NCHW storage keeps TF's axis order after reducing iff H and W both go, or C goes.
    if layout == NCHW and not keep and not ({1, 2} <= set(axes) or 3 in axes):
        layout = PLAIN
    dims = [lw._dim(a, Info(layout, info.rank)) for a in axes]
    out_rank = info.rank if keep else info.rank - len(axes)
    out_layout = NCHW if layout == NCHW and keep else PLAIN
    return _step(lw, node, layout, lambda args: reduce(args[0], dims, keep),
                 Info(out_layout, out_rank))


def _global_pool(lw: LoweringState, node: ir.Node) -> Built:
    info = lw.info[node.inputs[0]]
    dims = tuple(range(2, info.rank))
    return _step(lw, node, lw.spatial, lambda args: args[0].mean(dim=dims, keepdim=True),
                 Info(lw.spatial, info.rank))


def _pad(lw: LoweringState, node: ir.Node) -> Built:
    info = lw.info[node.inputs[0]]
    pairs = [(int(b), int(e)) for b, e in node.attrs["pads"]]
    if len(pairs) != info.rank:
        raise GraphFormatError(f"node '{node.name}': paddings do not match the rank")
    value = float(node.attrs.get("value", 0.0))
    mode = str(node.attrs.get("mode", "constant"))
    if mode not in ("constant", "reflect", "replicate"):
        raise UnsupportedOp(f"node '{node.name}': MirrorPad mode {mode.upper()}")
    torch_pairs = [pairs[a] for a in TORCH_TO_TF_AXIS] if info.layout == NCHW else pairs
    flat_torch = [p for pair in reversed(torch_pairs) for p in pair]

    def pad(args: list[torch.Tensor]) -> torch.Tensor:
        if mode == "constant":
            return F.pad(args[0], flat_torch, value=value)
        return F.pad(args[0], flat_torch[: 2 * (info.rank - 2)], mode=mode)  # spatial only

    spatial = None
    if (info.layout == NCHW and mode == "constant" and value == 0.0 and pairs[0] == (0, 0)
            and pairs[3] == (0, 0) and min(p for q in pairs for p in q) >= 0):
        spatial = ((pairs[1][0], pairs[2][0]), (pairs[1][1], pairs[2][1]))
    return PadStep(node.name, [node.inputs[0]], [None], pad, spatial), Info(info.layout, info.rank)


def _reshape(lw: LoweringState, node: ir.Node) -> Built:
    shape = [int(s) for s in node.attrs["shape"]]
    copy_zeros = not node.attrs.get("allowzero", 1)

    def reshape(args: list[torch.Tensor]) -> torch.Tensor:
        x = args[0]
        if copy_zeros:  # ONNX: a 0 copies that dimension of the input
            return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(shape)])
        return x.reshape(shape)

    return _step(lw, node, PLAIN, reshape, Info(PLAIN, len(shape)))


def _squeeze(lw: LoweringState, node: ir.Node) -> Built:
    rank = lw.info[node.inputs[0]].rank
    dims = sorted({int(d) % rank for d in node.attrs.get("axes") or []}, reverse=True)
    if not dims:
        raise UnsupportedOp(f"node '{node.name}': Squeeze without explicit squeeze_dims")

    def squeeze(args: list[torch.Tensor]) -> torch.Tensor:
        t = args[0]
        for d in dims:
            t = t.squeeze(d)
        return t

    return _step(lw, node, PLAIN, squeeze, Info(PLAIN, rank - len(dims)))


def _flatten(lw: LoweringState, node: ir.Node) -> Built:
    rank = lw.info[node.inputs[0]].rank
    axis = int(node.attrs.get("axis", 1)) % (rank + 1) if rank else 0

    def flatten(args: list[torch.Tensor]) -> torch.Tensor:
        x = args[0]
        return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))

    return _step(lw, node, PLAIN, flatten, Info(PLAIN, 2))


def _transpose(lw: LoweringState, node: ir.Node) -> Built:
    rank = lw.info[node.inputs[0]].rank
    perm = [int(p) for p in node.attrs.get("perm") or reversed(range(rank))]
    return _step(lw, node, PLAIN, lambda args: args[0].permute(perm), Info(PLAIN, rank))


def _concat(lw: LoweringState, node: ir.Node) -> Built:
    names = node.inputs
    rank = lw.info[names[0]].rank
    layout = lw._layout_of(names, rank)
    dim = lw._dim(int(node.attrs["axis"]), Info(layout, rank))
    operands = [lw._operand(n, layout, rank) for n in names]
    runtime = [n for n, c in zip(names, operands, strict=True) if c is None]

    def concat(args: list[torch.Tensor]) -> torch.Tensor:
        vals = iter(args)
        return torch.cat([c if c is not None else next(vals) for c in operands], dim=dim)

    return (FnStep(node.name, runtime, [lw._need(n, layout) for n in runtime], concat),
            Info(layout, rank))


def _softmax(lw: LoweringState, node: ir.Node) -> Built:
    info = lw.info[node.inputs[0]]
    dim = lw._dim(int(node.attrs.get("axis", -1)), info)
    return _step(lw, node, None, lambda args: torch.softmax(args[0], dim), info)


_DTYPES = {"float32": torch.float32, "int32": torch.int32, "bool": torch.bool,
           "int64": torch.int64, "float64": torch.float64}


def _cast(lw: LoweringState, node: ir.Node) -> Built:
    dtype = _DTYPES.get(str(node.attrs.get("to")))
    if dtype is None:
        raise UnsupportedOp(f"node '{node.name}': Cast to {node.attrs.get('to')}")
    return _step(lw, node, None, lambda args: args[0].to(dtype), lw.info[node.inputs[0]])


def _pool(lw: LoweringState, node: ir.Node) -> Built:
    a = node.attrs
    kernel = [int(k) for k in a["kernel_shape"]]
    if len(kernel) != 2 or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations") or []):
        raise UnsupportedOp(f"node '{node.name}': {node.op} variant (2-D, floor mode, "
                            "no dilation only)")
    strides = [int(s) for s in a.get("strides") or [1, 1]]
    auto_pad = str(a.get("auto_pad", "NOTSET"))
    pads = [int(p) for p in a.get("pads") or [0] * 4]
    is_max = node.op == "MaxPool"
    include_pad = bool(a.get("count_include_pad", 0))

    def pool(args: list[torch.Tensor]) -> torch.Tensor:
        x = args[0]
        begin, end = pads[:2], pads[2:]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pairs = [same_pads(size, k, s, odd_after=auto_pad == "SAME_UPPER")
                     for size, k, s in zip(x.shape[2:], kernel, strides, strict=True)]
            begin, end = [p[0] for p in pairs], [p[1] for p in pairs]
        x, padding = split_pads(x, begin, end, -math.inf if is_max else 0.0)
        if is_max:
            return F.max_pool2d(x, kernel, strides, padding)
        return F.avg_pool2d(x, kernel, strides, padding, count_include_pad=include_pad)

    return _step(lw, node, lw.spatial, pool, Info(lw.spatial, 4))


SHAPE_BUILDERS: dict[str, Callable[[LoweringState, ir.Node], Built]] = {
    **{op: _reduce for op in REDUCE}, "GlobalAveragePool": _global_pool, "Pad": _pad,
    "Reshape": _reshape, "Squeeze": _squeeze, "Flatten": _flatten, "Transpose": _transpose,
    "Concat": _concat, "Softmax": _softmax, "Cast": _cast, "MaxPool": _pool,
    "AveragePool": _pool,
}
