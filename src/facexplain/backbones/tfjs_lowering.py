"""Lowering one TF.js node to a torch step, with its layout bookkeeping (one builder per op).

``Lowering`` holds the state of a compile in progress (values known so far, steps emitted);
``tfjs_compiler.Compiler`` adds the graph walk and the fusion of affine tails into convs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from facexplain.backbones.tfjs_format import GraphFormatError, GraphNode, UnsupportedOp
from facexplain.backbones.tfjs_steps import (
    BINARY,
    BN_OPS,
    CONV_OPS,
    MATMUL_OPS,
    NCHW,
    PAD_OPS,
    PLAIN,
    REDUCE,
    TF_TO_TORCH_AXIS,
    TORCH_TO_TF_AXIS,
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

Const = Callable[[str], torch.Tensor]


class Lowering:
    """Per-op builders and the helpers they share; state of one compile."""

    def __init__(self, nodes: dict[str, GraphNode], const: Const, targets: Sequence[str],
                 fuse: bool) -> None:
        self.nodes = dict(nodes)
        self.const = const
        self.targets = list(dict.fromkeys(targets))
        self.protected = set(self.targets)
        self.fuse = fuse
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

    def _per_channel(self, name: str, channels: int) -> torch.Tensor | None:
        c = self.info[name].const
        if c is None or not c.is_floating_point():
            return None
        if c.numel() == 1:
            return c.reshape(1).expand(channels)
        if c.numel() == channels and c.shape[-1] == channels:
            return c.reshape(channels)
        return None

    def _batchnorm_affine(self, node: GraphNode) -> tuple[torch.Tensor, torch.Tensor] | None:
        consts = [self.info[n].const for n in node.inputs[1:5]]
        if any(c is None for c in consts) or len(consts) != 4:
            return None
        gamma, beta, mean, var = (c for c in consts if c is not None)
        eps = float(node.attrs.get("epsilon") or 0.0)
        scale = gamma * torch.rsqrt(var + eps)
        return scale, beta - mean * scale

    def _activation(self, node: GraphNode, ops: Sequence[str], args: Sequence[str],
                    channels: int | None) -> Activation | None:
        """The activation named by ``ops`` (a fused_ops tail or a single op); None if none."""
        act = Activation()
        for op in ops:
            if op == "Relu":
                act = Activation("relu")
            elif op == "Relu6":
                act = Activation("clamp", 0.0, 6.0)
            elif op == "LeakyRelu":
                alpha = node.attrs.get("leakyrelu_alpha", node.attrs.get("alpha"))
                act = Activation("leaky", alpha=0.2 if alpha is None else float(alpha))
            elif op == "Prelu":
                if not args or self.info[args[0]].const is None:
                    return None
                a = self.info[args[0]].const
                assert a is not None
                if channels is not None and (a.numel() == channels or a.numel() == 1):
                    a = a.reshape(-1).expand(channels).contiguous()
                elif channels is not None:
                    return None
                act = Activation("prelu", alpha=a)
            elif op in ("Elu", "Selu", "Sigmoid", "Tanh", "Softplus"):
                act = Activation(op)
            else:
                raise UnsupportedOp(f"node '{node.name}': fused activation '{op}'")
        return act

    def _build(self, node: GraphNode) -> tuple[TStep, Info]:
        op = node.op
        if op in CONV_OPS:
            return self._build_conv(node)
        if op in MATMUL_OPS:
            return self._build_matmul(node)
        if op in BINARY or op == "Prelu":
            return self._build_binary(node)
        if op in UNARY or op in ("LeakyRelu",):
            return self._build_unary(node)
        if op in BN_OPS:
            return self._build_batchnorm(node)
        if op in REDUCE:
            return self._build_reduce(node)
        if op in PAD_OPS:
            return self._build_pad(node)
        if op == "Reshape":
            return self._build_reshape(node)
        if op == "Squeeze":
            return self._build_squeeze(node)
        if op == "ConcatV2":
            return self._build_concat(node)
        if op == "Softmax":
            return self._build_softmax(node)
        if op == "Cast":
            return self._build_cast(node)
        raise UnsupportedOp(f"TF.js graph node '{node.name}' uses op '{op}'")  # pragma: no cover

    def _const_ints(self, name: str) -> list[int]:
        c = self.info[name].const
        if c is None:
            raise UnsupportedOp(f"'{name}' must be a constant (shapes/axes computed at run time)")
        return [int(v) for v in c.reshape(-1).tolist()]

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

    def _check_nhwc(self, node: GraphNode) -> None:
        fmt = node.attrs.get("data_format") or "NHWC"
        if fmt != "NHWC":
            raise UnsupportedOp(f"node '{node.name}': data_format {fmt} (only NHWC)")

    def _build_conv(self, node: GraphNode) -> tuple[TStep, Info]:
        self._check_nhwc(node)
        src, w_name = node.inputs[0], node.inputs[1]
        w = self.info[w_name].const
        if w is None:
            raise UnsupportedOp(f"node '{node.name}': convolution with a non-constant filter")
        depthwise = "Depthwise" in node.op
        kh, kw, cin, cout = w.shape
        if depthwise:  # (H, W, C, M) -> (C*M, 1, H, W); output channel c*M + m as in TF
            weight = w.permute(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw).contiguous()
            groups = cin
        else:
            weight = w.permute(3, 2, 0, 1).contiguous()
            groups = 1
        strides = node.attrs.get("strides") or [1, 1, 1, 1]
        dil = node.attrs.get("dilations") or [1, 1, 1, 1]
        padding = node.attrs.get("padding") or "VALID"
        pads = (0, 0, 0, 0)
        if padding == "EXPLICIT":
            e = node.attrs.get("explicit_paddings") or [0] * 8
            pads = (e[2], e[3], e[4], e[5])
        elif padding not in ("SAME", "VALID"):
            raise UnsupportedOp(f"node '{node.name}': padding {padding}")
        if padding != "SAME" and self.fuse:
            pad_step = self.producer.get(src)
            if isinstance(pad_step, PadStep) and pad_step.spatial and self._private(src):
                self.steps.remove(pad_step)
                del self.producer[src]
                t, b, left, r = pad_step.spatial
                pads = (pads[0] + t, pads[1] + b, pads[2] + left, pads[3] + r)
                src = pad_step.inputs[0]
        step = ConvStep(node.name, src, self._need(src, NCHW), weight, None,
                         (strides[1], strides[2]), (dil[1], dil[2]), groups,
                         "SAME" if padding == "SAME" else "EXPLICIT", pads)
        self._fused_tail(node, step)
        return step, Info(NCHW, 4)

    def _fused_tail(self, node: GraphNode, step: AffineStep) -> None:
        fused = node.attrs.get("fused_ops") or []
        if not fused:
            return
        args = node.inputs[2:]
        ops = list(fused)
        if ops[0] == "BiasAdd":
            bias = self._per_channel(args[0], step.out_channels) if args else None
            if bias is None:
                raise UnsupportedOp(f"node '{node.name}': fused BiasAdd needs a constant bias")
            step.shift(bias)
            ops, args = ops[1:], args[1:]
        elif ops[0] == "FusedBatchNorm":
            raise UnsupportedOp(f"node '{node.name}': fused op FusedBatchNorm")
        act = self._activation(node, ops, args, step.out_channels)
        if act is None:
            raise UnsupportedOp(f"node '{node.name}': fused activation arguments not constant")
        step.activate(act)

    def _build_matmul(self, node: GraphNode) -> tuple[TStep, Info]:
        a, b = node.inputs[0], node.inputs[1]
        ta = bool(node.attrs.get("transpose_a"))
        tb = bool(node.attrs.get("transpose_b"))
        bc = self.info[b].const
        if self.info[a].rank != 2:
            raise UnsupportedOp(f"node '{node.name}': MatMul of rank {self.info[a].rank}")
        if bc is not None and not ta:
            weight = (bc if tb else bc.t()).contiguous()  # (out, in) for F.linear
            step = LinearStep(node.name, a, self._need(a, PLAIN), weight, None)
            self._fused_tail(node, step)
            return step, Info(PLAIN, 2)
        if node.attrs.get("fused_ops"):
            raise UnsupportedOp(f"node '{node.name}': fused MatMul with a non-constant matrix")
        operands = [self.info[a].const, bc]
        runtime = [n for n, c in zip((a, b), operands, strict=True) if c is None]

        def matmul(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            return (x.t() if ta else x) @ (y.t() if tb else y)

        return FnStep(node.name, runtime, [None] * len(runtime), matmul), Info(PLAIN, 2)

    def _operand(self, name: str, layout: str, rank: int) -> torch.Tensor | None:
        """A constant operand shaped to broadcast against values stored in ``layout``."""
        c = self.info[name].const
        if c is None:
            return None
        if layout == NCHW and rank == 4:
            return to_nchw(c.reshape((1,) * (4 - c.dim()) + tuple(c.shape))).contiguous()
        return c

    def _build_binary(self, node: GraphNode) -> tuple[TStep, Info]:
        names = node.inputs[:2]
        rank = max(self.info[n].rank for n in names)
        layout = NCHW if any(self.info[n].layout == NCHW for n in names) and rank == 4 else PLAIN
        operands = [self._operand(n, layout, rank) for n in names]
        runtime = [n for n, c in zip(names, operands, strict=True) if c is None]
        converts = [self._need(n, layout) for n in runtime]
        fn2 = prelu if node.op == "Prelu" else BINARY[node.op]

        def binary(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            return fn2(x, y)

        return FnStep(node.name, runtime, converts, binary), Info(layout, rank)

    def _build_unary(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        if node.op == "LeakyRelu":
            act = self._activation(node, ["LeakyRelu"], [], None)
            assert act is not None
            fn: Callable[[torch.Tensor], torch.Tensor] = act
        else:
            fn = UNARY[node.op]
        return (FnStep(node.name, [src], [None], lambda args: fn(args[0])),
                Info(self.info[src].layout, self.info[src].rank))

    def _build_batchnorm(self, node: GraphNode) -> tuple[TStep, Info]:
        self._check_nhwc(node)
        affine = self._batchnorm_affine(node)
        if affine is None:
            raise UnsupportedOp(f"node '{node.name}': batch norm with non-constant statistics")
        src = node.inputs[0]
        info = self.info[src]
        scale, shift = (self._shape_channel(t, info) for t in affine)

        def bn(args: list[torch.Tensor]) -> torch.Tensor:
            return args[0] * scale + shift

        return FnStep(node.name, [src], [None], bn), Info(info.layout, info.rank)

    @staticmethod
    def _shape_channel(t: torch.Tensor, info: Info) -> torch.Tensor:
        return t.reshape(-1, 1, 1) if info.layout == NCHW else t

    def _build_reduce(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        info = self.info[src]
        axes = sorted({a % info.rank for a in self._const_ints(node.inputs[1])})
        keep = bool(node.attrs.get("keep_dims"))
        reduce = REDUCE[node.op]
        layout = info.layout
        # NCHW storage keeps TF's axis order after reducing iff H and W both go, or C goes.
        if layout == NCHW and not keep and not ({1, 2} <= set(axes) or 3 in axes):
            layout = PLAIN
        convert = self._need(src, layout)
        dims = [TF_TO_TORCH_AXIS[a] for a in axes] if layout == NCHW else axes
        out_rank = info.rank if keep else info.rank - len(axes)
        out_layout = NCHW if layout == NCHW and keep else PLAIN
        return (FnStep(node.name, [src], [convert], lambda args: reduce(args[0], dims, keep)),
                Info(out_layout, out_rank))

    def _build_pad(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        info = self.info[src]
        flat = self._const_ints(node.inputs[1])
        pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
        if len(pairs) != info.rank:
            raise GraphFormatError(f"node '{node.name}': paddings do not match the rank")
        value = 0.0
        if node.op == "PadV2" and len(node.inputs) > 2:
            c = self.info[node.inputs[2]].const
            value = 0.0 if c is None else float(c.detach().reshape(()))
        mode = "constant"
        if node.op == "MirrorPad":
            mode = {"REFLECT": "reflect", "SYMMETRIC": "symmetric"}.get(
                str(node.attrs.get("mode")), "")
            if mode == "symmetric" or not mode:
                raise UnsupportedOp(f"node '{node.name}': MirrorPad mode {node.attrs.get('mode')}")
        torch_pairs = [pairs[a] for a in TORCH_TO_TF_AXIS] if info.layout == NCHW else pairs
        flat_torch = [p for pair in reversed(torch_pairs) for p in pair]

        def pad(args: list[torch.Tensor]) -> torch.Tensor:
            if mode == "constant":
                return F.pad(args[0], flat_torch, value=value)
            return F.pad(args[0], flat_torch, mode=mode)

        spatial = None
        if (info.layout == NCHW and mode == "constant" and value == 0.0
                and pairs[0] == (0, 0) and pairs[3] == (0, 0) and min(flat) >= 0):
            spatial = (pairs[1][0], pairs[1][1], pairs[2][0], pairs[2][1])
        return (PadStep(node.name, [src], [None], pad, spatial), Info(info.layout, info.rank))

    def _build_reshape(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        shape = self._const_ints(node.inputs[1])
        return (FnStep(node.name, [src], [self._need(src, PLAIN)],
                        lambda args: args[0].reshape(shape)), Info(PLAIN, len(shape)))

    def _build_squeeze(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        rank = self.info[src].rank
        dims = sorted({d % rank for d in node.attrs.get("squeeze_dims") or []}, reverse=True)
        if not dims:
            raise UnsupportedOp(f"node '{node.name}': Squeeze without explicit squeeze_dims")

        def squeeze(args: list[torch.Tensor]) -> torch.Tensor:
            t = args[0]
            for d in dims:
                t = t.squeeze(d)
            return t

        return (FnStep(node.name, [src], [self._need(src, PLAIN)], squeeze),
                Info(PLAIN, rank - len(dims)))

    def _build_concat(self, node: GraphNode) -> tuple[TStep, Info]:
        names = node.inputs[:-1]
        rank = self.info[names[0]].rank
        axis = self._const_ints(node.inputs[-1])[0] % rank
        layout = NCHW if rank == 4 and any(self.info[n].layout == NCHW for n in names) else PLAIN
        dim = TF_TO_TORCH_AXIS[axis] if layout == NCHW else axis
        operands = [self._operand(n, layout, rank) for n in names]
        runtime = [n for n, c in zip(names, operands, strict=True) if c is None]

        def concat(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            return torch.cat([c if c is not None else next(vals) for c in operands], dim=dim)

        return (FnStep(node.name, runtime, [self._need(n, layout) for n in runtime], concat),
                Info(layout, rank))

    def _build_softmax(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        info = self.info[src]
        dim = 1 if info.layout == NCHW else -1
        return (FnStep(node.name, [src], [None], lambda args: torch.softmax(args[0], dim)),
                Info(info.layout, info.rank))

    def _build_cast(self, node: GraphNode) -> tuple[TStep, Info]:
        src = node.inputs[0]
        target = {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_BOOL": torch.bool}
        dst = node.attrs.get("DstT")
        if dst not in target:
            raise UnsupportedOp(f"node '{node.name}': Cast to {dst}")
        dtype = target[str(dst)]
        return (FnStep(node.name, [src], [None], lambda args: args[0].to(dtype)),
                Info(self.info[src].layout, self.info[src].rank))
