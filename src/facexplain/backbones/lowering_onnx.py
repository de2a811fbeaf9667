"""Lowering of the ONNX ops that only ONNX graphs use: run-time shape arithmetic and the less
common elementwise ops.

Why run time: ``torch.onnx.export`` spells ``x.view(x.shape[0], -1)`` or a padding by a
computed size as ``Shape -> Gather -> Concat -> Reshape``, whose values depend on the batch
size, so they cannot be folded into constants at build time. ONNX graphs are NCHW, so every
value here is stored as the graph sees it (``PLAIN``); the ranks of the results come from ONNX
shape inference (the ``_rank`` attribute the front end adds) or from the op's own rule.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from facexplain.backbones import ir
from facexplain.backbones.steps import PLAIN, FnStep, Info, LoweringState, TStep
from facexplain.backbones.tfjs_format import UnsupportedOp

Built = tuple[TStep, Info]
Fn = Callable[[list[torch.Tensor]], torch.Tensor]


def _ints(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _unsqueeze(node: ir.Node, rank: int) -> Fn:
    axes = sorted(int(a) % (rank + len(node.attrs["axes"])) for a in node.attrs["axes"])

    def run(xs: list[torch.Tensor]) -> torch.Tensor:
        t = xs[0]
        for a in axes:
            t = t.unsqueeze(a)
        return t

    return run


def _slice(node: ir.Node, rank: int) -> Fn:
    attrs = node.attrs

    def run(xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0]
        if "starts" in attrs:
            starts, ends = attrs["starts"], attrs["ends"]
            axes = attrs.get("axes") or list(range(len(starts)))
            steps = [1] * len(starts)
        else:
            starts, ends = _ints(xs[1]), _ints(xs[2])
            axes = _ints(xs[3]) if len(xs) > 3 else list(range(len(starts)))
            steps = _ints(xs[4]) if len(xs) > 4 else [1] * len(starts)
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            dim = axis % x.dim()
            idx = range(*slice(start, end, step).indices(x.shape[dim]))
            if step == 1:
                x = x.narrow(dim, idx.start, len(idx))
            else:
                x = x.index_select(dim, torch.tensor(list(idx), dtype=torch.long))
        return x

    return run


def _gather(node: ir.Node, rank: int) -> Fn:
    axis = int(node.attrs.get("axis", 0))

    def run(xs: list[torch.Tensor]) -> torch.Tensor:
        data, idx = xs[0], xs[1].long()
        dim = axis % data.dim()
        idx = torch.where(idx < 0, idx + data.shape[dim], idx)
        out = data.index_select(dim, idx.reshape(-1))
        return out.reshape((*data.shape[:dim], *idx.shape, *data.shape[dim + 1:]))

    return run


def _shape(node: ir.Node, rank: int) -> Fn:
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return lambda xs: torch.tensor(list(xs[0].shape)[start:end], dtype=torch.int64)


def _constant_of_shape(node: ir.Node, rank: int) -> Fn:
    value = node.attrs.get("value")
    fill = value if isinstance(value, torch.Tensor) else torch.zeros(1)
    return lambda xs: torch.full(_ints(xs[0]), fill.reshape(()).item(), dtype=fill.dtype)


def _reshape_dynamic(node: ir.Node, rank: int) -> Fn:
    copy_zeros = not node.attrs.get("allowzero", 0)

    def run(xs: list[torch.Tensor]) -> torch.Tensor:
        x, shape = xs[0], _ints(xs[1])
        if copy_zeros:
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return x.reshape(shape)

    return run


def _pad_dynamic(node: ir.Node, rank: int) -> Fn:
    mode, value = str(node.attrs["mode"]), float(node.attrs["value"])
    if mode not in ("constant", "reflect", "replicate"):
        raise UnsupportedOp(f"node '{node.name}': Pad mode {mode}")

    def run(xs: list[torch.Tensor]) -> torch.Tensor:
        pads = _ints(xs[1])
        n = len(pads) // 2
        flat = [p for axis in reversed(range(n)) for p in (pads[axis], pads[n + axis])]
        if mode == "constant":
            return F.pad(xs[0], flat, value=value)
        return F.pad(xs[0], flat[: 2 * (n - 2)], mode=mode)  # spatial axes only

    return run


def _elementwise(fn: Callable[..., torch.Tensor]) -> Callable[[ir.Node, int], Fn]:
    return lambda node, rank: lambda xs: fn(*xs)


def _sum(*xs: torch.Tensor) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _hard_sigmoid(node: ir.Node, rank: int) -> Fn:
    alpha, beta = float(node.attrs["alpha"]), float(node.attrs["beta"])
    return lambda xs: torch.clamp(alpha * xs[0] + beta, 0.0, 1.0)


def _expand(x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    return torch.broadcast_to(x, torch.broadcast_shapes(x.shape, tuple(_ints(shape))))


# op -> (function builder, rank rule used when shape inference gave no rank)
_RULES: dict[str, tuple[Callable[[ir.Node, int], Fn], Callable[[ir.Node, list[int]], int]]] = {
    "Unsqueeze": (_unsqueeze, lambda n, r: r[0] + len(n.attrs["axes"])),
    "Slice": (_slice, lambda n, r: r[0]),
    "Gather": (_gather, lambda n, r: r[0] + r[1] - 1),
    "Shape": (_shape, lambda n, r: 1),
    "ConstantOfShape": (_constant_of_shape, lambda n, r: -1),
    "ReshapeDynamic": (_reshape_dynamic, lambda n, r: -1),
    "PadDynamic": (_pad_dynamic, lambda n, r: r[0]),
    "Reciprocal": (_elementwise(torch.reciprocal), lambda n, r: r[0]),
    "Floor": (_elementwise(torch.floor), lambda n, r: r[0]),
    "Ceil": (_elementwise(torch.ceil), lambda n, r: r[0]),
    "Erf": (_elementwise(torch.erf), lambda n, r: r[0]),
    "HardSwish": (_elementwise(F.hardswish), lambda n, r: r[0]),
    "HardSigmoid": (_hard_sigmoid, lambda n, r: r[0]),
    "GlobalMaxPool": (_elementwise(lambda x: x.amax(dim=(2, 3), keepdim=True)), lambda n, r: 4),
    "Equal": (_elementwise(torch.eq), lambda n, r: max(r)),
    "Less": (_elementwise(torch.lt), lambda n, r: max(r)),
    "Greater": (_elementwise(torch.gt), lambda n, r: max(r)),
    "Sum": (_elementwise(_sum), lambda n, r: max(r)),
    "Where": (_elementwise(torch.where), lambda n, r: max(r)),
    "Expand": (_elementwise(_expand), lambda n, r: -1),
    "Range": (_elementwise(lambda a, b, c: torch.arange(a.item(), b.item(), c.item(),
                                                         dtype=a.dtype)), lambda n, r: 1),
}


def build(lw: LoweringState, node: ir.Node) -> Built:
    """One FnStep over the node's inputs (constants substituted), in the graph's own layout."""
    if lw.graph.layout != ir.NCHW_LAYOUT:
        raise UnsupportedOp(f"node '{node.name}': op '{node.op}' in a non-ONNX graph")
    make, rank_rule = _RULES[node.op]
    ranks = [lw.info[n].rank for n in node.inputs]
    rank = int(node.attrs.get("_rank", -1))
    rank = rank if rank >= 0 else rank_rule(node, ranks)
    if rank < 0:
        raise UnsupportedOp(f"node '{node.name}': {node.op} of unknown rank (no shape inference)")
    fn = make(node, ranks[0] if ranks else 0)
    operands = [lw.info[n].const for n in node.inputs]
    runtime = [n for n, c in zip(node.inputs, operands, strict=True) if c is None]

    def run(args: list[torch.Tensor]) -> torch.Tensor:
        vals = iter(args)
        return fn([c if c is not None else next(vals) for c in operands])

    return FnStep(node.name, runtime, [lw._need(n, PLAIN) for n in runtime], run), Info(PLAIN,
                                                                                       rank)


ONNX_OPS = frozenset(_RULES)
