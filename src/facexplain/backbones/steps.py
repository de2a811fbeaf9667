"""Compiled steps of the graph compiler: storage layouts, op tables and the step kinds.

Every 4-D runtime value is stored NCHW. In an NHWC graph (TF.js) such a value is tagged
``NCHW`` (its storage differs from the graph's axes, and steps translate them); everything
else, and every value of an NCHW graph (ONNX), is ``PLAIN``: stored as the graph sees it. A
step converts its own inputs (``converts``) before computing, so the executor core runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from facexplain.backbones import ir
from facexplain.backbones.executor import Program, Step, Value
from facexplain.backbones.padding import same_pads, split_pads

NCHW, PLAIN = "nchw", "plain"
TF_TO_TORCH_AXIS = (0, 2, 3, 1)  # TF NHWC axis -> position of that axis in NCHW storage
TORCH_TO_TF_AXIS = (0, 3, 1, 2)  # NCHW storage position -> TF axis


def to_nchw(t: torch.Tensor) -> torch.Tensor:
    while t.dim() < 4:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2)


def to_plain(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1)


CONVERT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {NCHW: to_nchw, PLAIN: to_plain}


@dataclass
class Activation:
    """What follows an affine op: none, relu, clamp(lo, hi), prelu(alpha), leaky, elu, ..."""

    kind: str = "none"
    lo: float | None = None
    hi: float | None = None
    alpha: torch.Tensor | float | None = None

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return y
        if self.kind == "relu":
            return F.relu(y)
        if self.kind == "clamp":
            return torch.clamp(y, self.lo, self.hi)
        if self.kind == "prelu":
            assert isinstance(self.alpha, torch.Tensor)
            if y.dim() >= 2 and self.alpha.dim() == 1:
                return F.prelu(y, self.alpha)
            return torch.where(y < 0, y * self.alpha, y)
        if self.kind == "leaky":
            assert isinstance(self.alpha, float)
            return F.leaky_relu(y, self.alpha)
        return UNARY[self.kind](y)


UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Relu": F.relu, "Elu": F.elu, "Selu": F.selu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
    "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt, "Rsqrt": torch.rsqrt,
    "Square": torch.square, "Neg": torch.neg, "Abs": torch.abs, "Softplus": F.softplus,
    "Identity": lambda t: t,
}


def prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, x * alpha, x)


BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div,
    "Max": torch.maximum, "Min": torch.minimum, "Pow": torch.pow,
    "SquaredDifference": lambda a, b: torch.square(a - b),
}
REDUCE: dict[str, Callable[[torch.Tensor, list[int], bool], torch.Tensor]] = {
    "ReduceMean": lambda t, d, k: t.mean(dim=d, keepdim=k),
    "ReduceSum": lambda t, d, k: t.sum(dim=d, keepdim=k),
    "ReduceMax": lambda t, d, k: t.amax(dim=d, keepdim=k),
    "ReduceMin": lambda t, d, k: t.amin(dim=d, keepdim=k),
    "ReduceL2": lambda t, d, k: torch.linalg.vector_norm(t, dim=d, keepdim=k),
    "ReduceSumSquare": lambda t, d, k: t.square().sum(dim=d, keepdim=k),
}
ACT_OPS = {"Relu", "Clip", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "LeakyRelu", "PRelu"}


class TStep(Step):
    """One compiled step: converts its ``inputs`` to the ``converts`` layouts, writes ``name``."""

    def __init__(self, name: str, inputs: list[str], converts: list[str | None]) -> None:
        self.name = name
        self.inputs = inputs
        self.converts = converts

    @property
    def outputs(self) -> list[str]:
        return [self.name]

    def run(self, args: list[Value]) -> torch.Tensor:
        converted = []
        for value, conv in zip(args, self.converts, strict=True):
            assert value is not None
            converted.append(value if conv is None else CONVERT[conv](value))
        return self.compute(converted)

    def compute(self, args: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class FnStep(TStep):
    def __init__(self, name: str, inputs: list[str], converts: list[str | None],
                 fn: Callable[[list[torch.Tensor]], torch.Tensor]) -> None:
        super().__init__(name, inputs, converts)
        self.fn = fn

    def compute(self, args: list[torch.Tensor]) -> torch.Tensor:
        return self.fn(args)


class AffineStep(TStep):
    """Convolution or dense layer + bias + activation; later scale/shift/activation fold in."""

    def __init__(self, name: str, src: str, convert: str | None, weight: torch.Tensor,
                 bias: torch.Tensor | None) -> None:
        super().__init__(name, [src], [convert])
        self.weight = weight  # out channels first: OIHW or (out, in)
        self.bias = bias
        self.act = Activation()

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    def scale(self, c: torch.Tensor) -> bool:
        if self.act.kind != "none":
            return False
        self.weight = self.weight * c.reshape(-1, *([1] * (self.weight.dim() - 1)))
        self.bias = None if self.bias is None else self.bias * c
        return True

    def shift(self, c: torch.Tensor) -> bool:
        if self.act.kind != "none":
            return False
        self.bias = c.clone() if self.bias is None else self.bias + c
        return True

    def clamp(self, lo: float | None, hi: float | None) -> bool:
        act = self.act
        if act.kind == "relu":
            act = Activation("clamp", 0.0, None)
        if act.kind not in ("none", "clamp"):
            return False
        new_lo = lo if act.lo is None else (act.lo if lo is None else max(lo, act.lo))
        new_hi = hi if act.hi is None else (act.hi if hi is None else min(hi, act.hi))
        if new_lo is not None and new_hi is not None and new_lo > new_hi:
            return False
        self.act = Activation("clamp", new_lo, new_hi)
        return True

    def activate(self, act: Activation) -> bool:
        if self.act.kind != "none":
            return False
        self.act = act
        return True

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute(self, args: list[torch.Tensor]) -> torch.Tensor:
        return self.act(self.apply(args[0]))


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvStep(AffineStep):
    """N-D convolution over NCHW storage; ``auto_pad`` SAME_* resolves pads from the input."""

    def __init__(self, name: str, src: str, convert: str | None, weight: torch.Tensor,
                 bias: torch.Tensor | None, stride: tuple[int, ...], dilation: tuple[int, ...],
                 groups: int, auto_pad: str, begin: tuple[int, ...], end: tuple[int, ...]
                 ) -> None:
        super().__init__(name, src, convert, weight, bias)
        self.stride = stride
        self.dilation = dilation
        self.groups = groups
        self.auto_pad = auto_pad  # SAME_UPPER, SAME_LOWER or NOTSET (explicit ``begin``/``end``)
        self.begin = begin
        self.end = end

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        begin, end = self.begin, self.end
        if self.auto_pad != "NOTSET":
            pairs = [same_pads(size, k, s, d, odd_after=self.auto_pad == "SAME_UPPER")
                     for size, k, s, d in zip(x.shape[2:], self.weight.shape[2:], self.stride,
                                              self.dilation, strict=True)]
            begin, end = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        if self.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        x, pad = split_pads(x, begin, end)
        conv = _CONV[self.weight.dim() - 2]
        return conv(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)


class LinearStep(AffineStep):
    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class PadStep(FnStep):
    def __init__(self, name: str, inputs: list[str], converts: list[str | None],
                 fn: Callable[[list[torch.Tensor]], torch.Tensor],
                 spatial: tuple[tuple[int, ...], tuple[int, ...]] | None) -> None:
        super().__init__(name, inputs, converts, fn)
        self.spatial = spatial  # (begin, end) zero padding of H and W only: foldable into a conv


@dataclass
class Info:
    """Compile-time knowledge about one value: storage layout, rank, constant value if any."""

    layout: str
    rank: int
    const: torch.Tensor | None = None


@dataclass
class Plan:
    """The steps that produce one set of requested nodes, compiled from one weights version."""

    program: Program
    consts: dict[str, torch.Tensor]
    layouts: dict[str, Info]
    values: dict[str, Info] = field(default_factory=dict)  # every runtime value's storage
    version: tuple[int, ...] = ()
    nhwc: bool = True  # the graph's 4-D layout; NCHW graphs store every value as it is

    @property
    def steps(self) -> list[TStep]:
        return self.program.steps  # type: ignore[return-value]

    def enter(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """An NCHW tensor into the storage layout of value ``name``."""
        info = self.values.get(name)
        plain = info is not None and info.layout == PLAIN and info.rank == 4
        return to_plain(x) if plain and self.nhwc else x

    def leave(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Value ``name`` out of its storage layout: 4-D tensors come back NCHW."""
        info = self.values.get(name) or self.layouts[name]
        return to_nchw(x) if info.layout == PLAIN and info.rank == 4 and self.nhwc else x


class LoweringState(Protocol):
    """What the op builders (``lowering_shapes``, ``lowering_onnx``) read of the compile in
    progress (``lowering.Lowering``), so they need not import the module that calls them."""

    graph: ir.Graph
    info: dict[str, Info]
    spatial: str

    def _need(self, name: str, layout: str) -> str | None: ...

    def _dim(self, axis: int, info: Info) -> int: ...

    def _operand(self, name: str, layout: str, rank: int) -> torch.Tensor | None: ...

    def _layout_of(self, names: Sequence[str], rank: int) -> str: ...
