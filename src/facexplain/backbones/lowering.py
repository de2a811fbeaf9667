"""Lowering one IR node to a torch step, with its layout bookkeeping (one builder per op kind).

``Lowering`` holds the state of a compile in progress (values known so far, steps emitted);
``compiler.Compiler`` adds the graph walk and the fusion of affine tails into convs. Shape and
layout ops (reshape, concat, pad, pooling, ...) are built by ``lowering_shapes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from facexplain.backbones import ir, lowering_onnx
from facexplain.backbones.lowering_shapes import SHAPE_BUILDERS
from facexplain.backbones.steps import (
    BINARY,
    NCHW,
    PLAIN,
    TF_TO_TORCH_AXIS,
    UNARY,
    Activation,
    AffineStep,
    ConvStep,
    FnStep,
    Info,
    LinearStep,
    PadStep,
    TStep,
    prelu,
    to_nchw,
)
from facexplain.backbones.tfjs_format import UnsupportedOp

Const = Callable[[str], torch.Tensor]


class Lowering:
    """Per-op builders and the helpers they share; state of one compile."""

    def __init__(self, graph: ir.Graph, const: Const, targets: Sequence[str], fuse: bool) -> None:
        self.graph = graph
        self.nodes = dict(graph.nodes)
        self.const = const
        self.targets = list(dict.fromkeys(targets))
        self.protected = set(self.targets)
        self.fuse = fuse
        # storage tag of 4-D maps: NCHW (translated axes) in NHWC graphs, PLAIN in NCHW ones
        self.spatial = NCHW if graph.layout == ir.NHWC else PLAIN
        self.consumers: dict[str, int] = {}
        for node in self.nodes.values():
            for ref in node.inputs:
                self.consumers[ref] = self.consumers.get(ref, 0) + 1
        self.info: dict[str, Info] = {}
        self.steps: list[TStep] = []
        self.producer: dict[str, TStep] = {}

    def _private(self, name: str) -> bool:
        """True if ``name`` feeds exactly one node and nobody asked for it: it may be fused."""
        return self.consumers.get(name, 0) == 1 and name not in self.protected

    def _channel_axis(self, step: AffineStep) -> int:
        """The graph axis (from the end) along which ``step``'s output channels run."""
        rank = 2 if isinstance(step, LinearStep) else step.weight.dim()
        return -1 if isinstance(step, LinearStep) or self.graph.layout == ir.NHWC else 1 - rank

    def _per_channel(self, name: str, step: AffineStep) -> torch.Tensor | None:
        """Constant ``name`` as one value per output channel of ``step`` (None if it is not)."""
        c = self.info[name].const
        channels = step.out_channels
        if c is None or not c.is_floating_point():
            return None
        if c.numel() == 1:
            return c.reshape(1).expand(channels)
        axis = self._channel_axis(step)
        if c.numel() == channels and c.dim() >= -axis and c.shape[axis] == channels:
            return c.reshape(channels)
        return None

    def _batchnorm_affine(self, node: ir.Node) -> tuple[torch.Tensor, torch.Tensor] | None:
        consts = [self.info[n].const for n in node.inputs[1:5]]
        if any(c is None for c in consts) or len(consts) != 4:
            return None
        gamma, beta, mean, var = (c for c in consts if c is not None)
        scale = gamma * torch.rsqrt(var + float(node.attrs.get("epsilon", 0.0)))
        return scale, beta - mean * scale

    def _activation(self, node: ir.Node, ops: Sequence[str], args: Sequence[str],
                    step: AffineStep | None) -> Activation | None:
        """The activation named by ``ops`` (a fused_ops tail or a single op); None if none."""
        act = Activation()
        for op in ops:
            if op == "Relu":
                act = Activation("relu")
            elif op == "Relu6":
                act = Activation("clamp", 0.0, 6.0)
            elif op == "Clip":
                act = Activation("clamp", node.attrs.get("lo"), node.attrs.get("hi"))
            elif op == "LeakyRelu":
                act = Activation("leaky", alpha=float(node.attrs.get("alpha", 0.2)))
            elif op in ("Prelu", "PRelu"):
                a = self._per_channel(args[0], step) if args and step is not None else None
                if a is None:
                    return None
                act = Activation("prelu", alpha=a.contiguous())
            elif op in ("Elu", "Selu", "Sigmoid", "Tanh", "Softplus"):
                act = Activation(op)
            else:
                raise UnsupportedOp(f"node '{node.name}': fused activation '{op}'")
        return act

    def _build(self, node: ir.Node) -> tuple[TStep, Info]:
        op = node.op
        if op == ir.UNSUPPORTED:
            raise UnsupportedOp(str(node.attrs["reason"]))
        if op == "Conv":
            return self._build_conv(node)
        if op == "Gemm":
            return self._build_gemm(node)
        if op == "MatMul":
            return self._build_matmul(node)
        if op in BINARY or op == "PRelu":
            return self._build_binary(node)
        if op in UNARY or op in ("LeakyRelu", "Clip"):
            return self._build_unary(node)
        if op == "BatchNormalization":
            return self._build_batchnorm(node)
        if op in SHAPE_BUILDERS:
            return SHAPE_BUILDERS[op](self, node)
        if op in lowering_onnx.ONNX_OPS:
            return lowering_onnx.build(self, node)
        raise UnsupportedOp(f"graph node '{node.name}' uses op '{op}', which the torch executor "
                            "does not implement")

    def _need(self, name: str, layout: str) -> str | None:
        """The conversion (if any) that brings runtime value ``name`` into ``layout``."""
        info = self.info[name]
        if info.layout == layout:
            return None
        if layout == PLAIN and info.rank == 4:
            return PLAIN
        if layout == NCHW:
            return NCHW
        return None

    def _dim(self, axis: int, info: Info) -> int:
        """Graph axis -> dimension of the stored tensor."""
        axis %= max(info.rank, 1)
        return TF_TO_TORCH_AXIS[axis] if info.layout == NCHW else axis

    def _const(self, node: ir.Node, name: str, what: str) -> torch.Tensor:
        c = self.info[name].const
        if c is None:
            raise UnsupportedOp(f"node '{node.name}': {what} must be a constant")
        return c

    def _build_conv(self, node: ir.Node) -> tuple[TStep, Info]:
        src = node.inputs[0]
        w = self._const(node, node.inputs[1], "the convolution filter")
        a = node.attrs
        fmt = a.get("weight_format", "OIHW")
        groups = int(a.get("group", 1))
        if fmt == "HWCM":  # (H, W, C, M) -> (C*M, 1, H, W); output channel c*M + m as in TF
            kh, kw, cin, mult = w.shape
            weight = w.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw).contiguous()
            groups = cin
        elif fmt == "HWIO":
            weight = w.permute(3, 2, 0, 1).contiguous()
        else:
            weight = w
        n = weight.dim() - 2
        auto_pad = str(a.get("auto_pad", "NOTSET"))
        pads = list(a.get("pads") or [0] * 2 * n)
        begin, end = list(pads[:n]), list(pads[n:])
        if auto_pad == "NOTSET" and self.fuse:
            pad_step = self.producer.get(src)
            if isinstance(pad_step, PadStep) and pad_step.spatial and self._private(src):
                self.steps.remove(pad_step)
                del self.producer[src]
                begin = [p + q for p, q in zip(begin, pad_step.spatial[0], strict=True)]
                end = [p + q for p, q in zip(end, pad_step.spatial[1], strict=True)]
                src = pad_step.inputs[0]
        step = ConvStep(node.name, src, self._need(src, self.spatial), weight, None,
                        tuple(a.get("strides") or [1] * n), tuple(a.get("dilations") or [1] * n),
                        groups, auto_pad, tuple(begin), tuple(end))
        self._fused_tail(node, step)
        return step, Info(self.spatial, n + 2)

    def _fused_tail(self, node: ir.Node, step: AffineStep) -> None:
        ops = list(node.attrs.get("fused_ops") or [])
        if not ops:
            return
        args = node.inputs[2:]
        if ops[0] == "BiasAdd":
            c = self.info[args[0]].const if args else None
            flat = c is not None and c.dim() == 1 and c.numel() == step.out_channels
            bias = c if flat else (self._per_channel(args[0], step) if args else None)
            if bias is None:
                raise UnsupportedOp(f"node '{node.name}': fused BiasAdd needs a constant bias")
            beta = float(node.attrs.get("beta", 1.0))
            step.shift(bias if beta == 1.0 else bias * beta)
            ops, args = ops[1:], args[1:]
        elif ops[0] == "FusedBatchNorm":
            raise UnsupportedOp(f"node '{node.name}': fused op FusedBatchNorm")
        act = self._activation(node, ops, args, step)
        if act is None:
            raise UnsupportedOp(f"node '{node.name}': fused activation arguments not constant")
        step.activate(act)

    def _build_gemm(self, node: ir.Node) -> tuple[TStep, Info]:
        a, b = node.inputs[0], node.inputs[1]
        ta, tb = bool(node.attrs.get("transA")), bool(node.attrs.get("transB"))
        alpha = float(node.attrs.get("alpha", 1.0))
        bc = self.info[b].const
        if self.info[a].rank != 2:
            raise UnsupportedOp(f"node '{node.name}': MatMul of rank {self.info[a].rank}")
        if bc is not None and not ta:
            weight = (bc if tb else bc.t()).contiguous()  # (out, in) for F.linear
            step = LinearStep(node.name, a, self._need(a, PLAIN),
                              weight if alpha == 1.0 else weight * alpha, None)
            self._fused_tail(node, step)
            return step, Info(PLAIN, 2)
        if node.attrs.get("fused_ops"):
            raise UnsupportedOp(f"node '{node.name}': fused MatMul with a non-constant matrix")
        operands = [self.info[a].const, bc]
        runtime = [n for n, c in zip((a, b), operands, strict=True) if c is None]

        def matmul(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            out = (x.t() if ta else x) @ (y.t() if tb else y)
            return out if alpha == 1.0 else out * alpha

        converts = [self._need(n, PLAIN) for n in runtime]
        return FnStep(node.name, runtime, converts, matmul), Info(PLAIN, 2)

    def _build_matmul(self, node: ir.Node) -> tuple[TStep, Info]:
        """numpy-style matmul (ONNX): a constant 2-D right operand becomes a linear layer."""
        a, b = node.inputs[0], node.inputs[1]
        rank = max(self.info[a].rank, self.info[b].rank)
        bc = self.info[b].const
        if bc is not None and bc.dim() == 2 and self.info[a].const is None:
            return LinearStep(node.name, a, self._need(a, PLAIN), bc.t().contiguous(),
                              None), Info(PLAIN, rank)
        operands = [self.info[a].const, bc]
        runtime = [n for n, c in zip((a, b), operands, strict=True) if c is None]

        def matmul(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            return torch.matmul(x, y)

        converts = [self._need(n, PLAIN) for n in runtime]
        return FnStep(node.name, runtime, converts, matmul), Info(PLAIN, rank)

    def _operand(self, name: str, layout: str, rank: int) -> torch.Tensor | None:
        """A constant operand shaped to broadcast against values stored in ``layout``."""
        c = self.info[name].const
        if c is None:
            return None
        if layout == NCHW and rank == 4:
            return to_nchw(c.reshape((1,) * (4 - c.dim()) + tuple(c.shape))).contiguous()
        return c

    def _layout_of(self, names: Sequence[str], rank: int) -> str:
        """NCHW if any operand is stored translated and the result is 4-D, else PLAIN."""
        return NCHW if rank == 4 and any(self.info[n].layout == NCHW for n in names) else PLAIN

    def _build_binary(self, node: ir.Node) -> tuple[TStep, Info]:
        names = node.inputs[:2]
        rank = max(self.info[n].rank for n in names)
        layout = self._layout_of(names, rank)
        operands = [self._operand(n, layout, rank) for n in names]
        runtime = [n for n, c in zip(names, operands, strict=True) if c is None]
        converts = [self._need(n, layout) for n in runtime]
        fn2 = prelu if node.op == "PRelu" else BINARY[node.op]

        def binary(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            return fn2(x, y)

        return FnStep(node.name, runtime, converts, binary), Info(layout, rank)

    def _build_unary(self, node: ir.Node) -> tuple[TStep, Info]:
        src = node.inputs[0]
        if node.op in ("LeakyRelu", "Clip"):
            act = self._activation(node, [node.op], [], None)
            assert act is not None
            fn: Callable[[torch.Tensor], torch.Tensor] = act
        else:
            fn = UNARY[node.op]
        return (FnStep(node.name, [src], [None], lambda args: fn(args[0])),
                Info(self.info[src].layout, self.info[src].rank))

    def _build_batchnorm(self, node: ir.Node) -> tuple[TStep, Info]:
        affine = self._batchnorm_affine(node)
        if affine is None:
            raise UnsupportedOp(f"node '{node.name}': batch norm with non-constant statistics")
        src = node.inputs[0]
        info = self.info[src]
        # channels: dim 1 of stored NCHW maps and of NCHW graphs, else the last axis
        first = info.layout == NCHW or (self.graph.layout != ir.NHWC and info.rank >= 2)
        tail = (1,) * (info.rank - 2) if first else ()
        scale, shift = (t.reshape(-1, *tail) for t in affine)

        def bn(args: list[torch.Tensor]) -> torch.Tensor:
            return args[0] * scale + shift

        return FnStep(node.name, [src], [None], bn), Info(info.layout, info.rank)
