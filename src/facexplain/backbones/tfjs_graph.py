"""Run a TensorFlow.js graph model (model.json + weight shards) as a differentiable torch module.

TF.js graph models are frozen TensorFlow GraphDefs in JSON with the weights in binary shards.
Executing the graph in torch (instead of porting each network by hand) keeps the original
computation, node for node, and lets any node be read or hooked by its TF name. TF tensors are
NHWC; here 4-D activations are stored NCHW and every op translates its axes, so the spatial maps
come out in torch's layout. Affine ops that follow a convolution (batch-norm scale/shift, bias)
and the activation after it are folded into the convolution for speed, unless a requested node
would disappear by that.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.stages import single_live_cuts


class GraphFormatError(ValueError):
    """The model.json or its weight shards are not a TF.js graph model this module can read."""


class UnsupportedOp(NotImplementedError):
    """The graph uses an op the torch executor does not implement."""


@dataclass
class GraphNode:
    """One GraphDef node with decoded attributes (strings, ints, floats, lists)."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphModel:
    """A parsed TF.js graph model: nodes in file order and the decoded constant values."""

    nodes: dict[str, GraphNode]
    weights: dict[str, np.ndarray]
    signature: dict[str, Any]

    @property
    def placeholders(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.op == "Placeholder"]


# ----------------------------------------------------------------------------------- parsing


def _attr_scalar(kind: str, value: Any) -> Any:
    if kind == "s":
        return base64.b64decode(value).decode("utf-8", errors="replace")
    if kind == "i":
        return int(value)
    if kind == "f":
        return float(value)
    if kind == "b":
        return bool(value)
    return value


def _decode_attr(value: Mapping[str, Any]) -> Any:
    """Proto-JSON AttrValue -> Python value (proto3 leaves defaults out: {} means 0/empty)."""
    if "list" in value:
        items = value["list"]
        for kind in ("i", "f", "s", "b", "type", "shape"):
            if kind in items:
                return [_attr_scalar(kind, v) for v in items[kind]]
        return []
    for kind in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
        if kind in value:
            return _attr_scalar(kind, value[kind])
    return None


def _split_input(ref: str) -> str | None:
    """'name:0' -> 'name'; control inputs ('^name') carry no data and give None."""
    if ref.startswith("^"):
        return None
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        if index != "0":
            raise UnsupportedOp(f"input '{ref}' reads output {index} of a multi-output op")
        return name
    return ref


_PLAIN_DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("<f4", 4), "int32": ("<i4", 4), "bool": ("u1", 1),
}
_QUANT_DTYPES: dict[str, tuple[str, int]] = {
    "uint8": ("u1", 1), "uint16": ("<u2", 2), "float16": ("<f2", 2),
}


def _decode_weight(spec: Mapping[str, Any], data: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = tuple(int(s) for s in spec["shape"])
    count = math.prod(shape)
    dtype = spec["dtype"]
    quant = spec.get("quantization")
    if quant:
        if quant["dtype"] not in _QUANT_DTYPES:
            raise GraphFormatError(f"weight {spec['name']}: unknown quantization {quant['dtype']}")
        np_dtype, size = _QUANT_DTYPES[quant["dtype"]]
        raw = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset)
        if quant["dtype"] == "float16":
            arr = raw.astype(np.float32)
        else:
            # TF.js dequantises in float64 (JS numbers) and stores the result as float32.
            real = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
            arr = np.trunc(real).astype(np.int32) if dtype == "int32" else real.astype(np.float32)
    else:
        if dtype not in _PLAIN_DTYPES:
            raise GraphFormatError(f"weight {spec['name']}: unsupported dtype {dtype}")
        np_dtype, size = _PLAIN_DTYPES[dtype]
        arr = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset)
        arr = arr.astype(np.bool_) if dtype == "bool" else arr.astype(np_dtype[1:])
    return arr.reshape(shape), offset + count * size


def decode_weights(manifest: Sequence[Mapping[str, Any]], base_dir: Path) -> dict[str, np.ndarray]:
    """Read every weight group: its shards concatenated, specs laid out back to back."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((base_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            try:
                weights[spec["name"]], offset = _decode_weight(spec, data, offset)
            except ValueError as err:  # numpy: buffer too small
                raise GraphFormatError(f"weight shards too short at {spec['name']}") from err
    return weights


def parse_graph_model(model_json: Path) -> GraphModel:
    """Parse model.json (topology + weightsManifest) and decode its weight shards."""
    spec = json.loads(Path(model_json).read_text())
    if spec.get("format", "graph-model") != "graph-model" or "modelTopology" not in spec:
        raise GraphFormatError(f"{model_json} is not a TF.js graph model")
    nodes: dict[str, GraphNode] = {}
    for raw in spec["modelTopology"].get("node", []):
        inputs = [n for n in (_split_input(r) for r in raw.get("input", [])) if n is not None]
        attrs = {k: _decode_attr(v) for k, v in raw.get("attr", {}).items()}
        nodes[raw["name"]] = GraphNode(raw["name"], raw["op"], inputs, attrs)
    if spec["modelTopology"].get("library", {}).get("function"):
        raise UnsupportedOp(f"{model_json} uses graph functions (control flow)")
    weights = decode_weights(spec.get("weightsManifest", []), Path(model_json).parent)
    for node in nodes.values():
        if node.op == "Const" and node.name not in weights:
            raise GraphFormatError(f"constant '{node.name}' has no value in the weight manifest")
    return GraphModel(nodes, weights, spec.get("signature", {}))


# ------------------------------------------------------------------------- execution pieces

NCHW, PLAIN = "nchw", "plain"
_TF_TO_TORCH_AXIS = (0, 2, 3, 1)  # TF NHWC axis -> position of that axis in NCHW storage
_TORCH_TO_TF_AXIS = (0, 3, 1, 2)  # NCHW storage position -> TF axis


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF 'SAME' padding for one axis: (before, after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _to_nchw(t: torch.Tensor) -> torch.Tensor:
    while t.dim() < 4:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2)


def _to_plain(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1)


_CONVERT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {NCHW: _to_nchw, PLAIN: _to_plain}


@dataclass
class _Activation:
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
        return _UNARY[self.kind](y)


_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Relu": F.relu, "Relu6": lambda t: torch.clamp(t, 0.0, 6.0), "Elu": F.elu,
    "Selu": F.selu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Exp": torch.exp,
    "Log": torch.log, "Sqrt": torch.sqrt, "Rsqrt": torch.rsqrt, "Square": torch.square,
    "Neg": torch.neg, "Abs": torch.abs, "Softplus": F.softplus,
    "Identity": lambda t: t, "StopGradient": lambda t: t, "Snapshot": lambda t: t,
}


def _prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, x * alpha, x)


_BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Add": torch.add, "AddV2": torch.add, "BiasAdd": torch.add, "Sub": torch.sub,
    "Mul": torch.mul, "RealDiv": torch.div, "Div": torch.div, "Maximum": torch.maximum,
    "Minimum": torch.minimum, "Pow": torch.pow,
    "SquaredDifference": lambda a, b: torch.square(a - b),
}
_REDUCE: dict[str, Callable[[torch.Tensor, list[int], bool], torch.Tensor]] = {
    "Mean": lambda t, d, k: t.mean(dim=d, keepdim=k),
    "Sum": lambda t, d, k: t.sum(dim=d, keepdim=k),
    "Max": lambda t, d, k: t.amax(dim=d, keepdim=k),
    "Min": lambda t, d, k: t.amin(dim=d, keepdim=k),
}
_CONV_OPS = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative",
             "DepthwiseConv2d"}
_MATMUL_OPS = {"MatMul", "_FusedMatMul"}
_PAD_OPS = {"Pad", "PadV2", "MirrorPad"}
_BN_OPS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_ACT_OPS = {"Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "LeakyRelu", "Prelu"}
SUPPORTED_OPS = frozenset(
    {"Const", "Placeholder", "Reshape", "Squeeze", "ConcatV2", "Softmax", "Cast", "Prelu",
     "LeakyRelu"} | _CONV_OPS | _MATMUL_OPS | _PAD_OPS | _BN_OPS | set(_UNARY) | set(_BINARY)
    | set(_REDUCE)
)


class _Step:
    """One runtime operation: reads ``inputs`` (converted to ``converts``), writes ``name``."""

    def __init__(self, name: str, inputs: list[str], converts: list[str | None]) -> None:
        self.name = name
        self.inputs = inputs
        self.converts = converts

    def run(self, args: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class _FnStep(_Step):
    def __init__(self, name: str, inputs: list[str], converts: list[str | None],
                 fn: Callable[[list[torch.Tensor]], torch.Tensor]) -> None:
        super().__init__(name, inputs, converts)
        self.fn = fn

    def run(self, args: list[torch.Tensor]) -> torch.Tensor:
        return self.fn(args)


class _AffineStep(_Step):
    """Convolution or dense layer + bias + activation; later scale/shift/activation fold in."""

    def __init__(self, name: str, src: str, convert: str | None, weight: torch.Tensor,
                 bias: torch.Tensor | None) -> None:
        super().__init__(name, [src], [convert])
        self.weight = weight  # out channels first: OIHW or (out, in)
        self.bias = bias
        self.act = _Activation()

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
            act = _Activation("clamp", 0.0, None)
        if act.kind not in ("none", "clamp"):
            return False
        new_lo = lo if act.lo is None else (act.lo if lo is None else max(lo, act.lo))
        new_hi = hi if act.hi is None else (act.hi if hi is None else min(hi, act.hi))
        if new_lo is not None and new_hi is not None and new_lo > new_hi:
            return False
        self.act = _Activation("clamp", new_lo, new_hi)
        return True

    def activate(self, act: _Activation) -> bool:
        if self.act.kind != "none":
            return False
        self.act = act
        return True

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run(self, args: list[torch.Tensor]) -> torch.Tensor:
        return self.act(self.apply(args[0]))


class _ConvStep(_AffineStep):
    def __init__(self, name: str, src: str, convert: str | None, weight: torch.Tensor,
                 bias: torch.Tensor | None, stride: tuple[int, int], dilation: tuple[int, int],
                 groups: int, padding: str, pads: tuple[int, int, int, int]) -> None:
        super().__init__(name, src, convert, weight, bias)
        self.stride = stride
        self.dilation = dilation
        self.groups = groups
        self.padding = padding  # 'SAME' or 'EXPLICIT' (VALID is EXPLICIT with zeros)
        self.pads = pads  # top, bottom, left, right

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "SAME":
            kh, kw = self.weight.shape[-2:]
            top, bottom = same_pads(x.shape[-2], kh, self.stride[0], self.dilation[0])
            left, right = same_pads(x.shape[-1], kw, self.stride[1], self.dilation[1])
        else:
            top, bottom, left, right = self.pads
        if self.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        if top == bottom and left == right:
            pad: tuple[int, int] = (top, left)
        else:
            x = F.pad(x, (left, right, top, bottom))
            pad = (0, 0)
        return F.conv2d(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)


class _LinearStep(_AffineStep):
    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class _PadStep(_FnStep):
    def __init__(self, name: str, inputs: list[str], converts: list[str | None],
                 fn: Callable[[list[torch.Tensor]], torch.Tensor],
                 spatial: tuple[int, int, int, int] | None) -> None:
        super().__init__(name, inputs, converts, fn)
        self.spatial = spatial  # zero padding of H and W only, foldable into a convolution


@dataclass
class _Info:
    """Compile-time knowledge about one value: storage layout, rank, constant value if any."""

    layout: str
    rank: int
    const: torch.Tensor | None = None


@dataclass
class _Plan:
    steps: list[_Step]
    frees: list[list[str]]
    consts: dict[str, torch.Tensor]
    layouts: dict[str, _Info]
    values: dict[str, _Info] = field(default_factory=dict)  # every runtime value's storage


# --------------------------------------------------------------------------------- compiler


class _Compiler:
    """Turns the sub-graph that ``targets`` need into a list of torch steps."""

    def __init__(self, module: TFJSGraphModule, targets: Sequence[str]) -> None:
        self.module = module
        self.targets = list(dict.fromkeys(targets))
        self.protected = set(self.targets)
        self.fuse = module.fuse
        self.nodes = dict(module.graph_def.nodes)
        self.consumers: dict[str, int] = {}
        for node in self.nodes.values():
            for ref in node.inputs:
                self.consumers[ref] = self.consumers.get(ref, 0) + 1
        if self.fuse:
            self._rewrite_prelu()
        self.info: dict[str, _Info] = {}
        self.steps: list[_Step] = []
        self.producer: dict[str, _Step] = {}

    # ---- graph helpers
    def _order(self) -> list[str]:
        order: list[str] = []
        mark: dict[str, int] = {}
        for target in self.targets:
            if target not in self.nodes:
                raise KeyError(f"the graph has no node named '{target}'")
            if mark.get(target) == 2:
                continue
            mark[target] = 1
            stack = [(target, 0)]
            while stack:
                name, i = stack[-1]
                ins = self.nodes[name].inputs
                if i < len(ins):
                    stack[-1] = (name, i + 1)
                    child = ins[i]
                    if child not in self.nodes:
                        raise GraphFormatError(f"node '{name}' reads unknown node '{child}'")
                    state = mark.get(child)
                    if state is None:
                        mark[child] = 1
                        stack.append((child, 0))
                    elif state == 1:
                        raise GraphFormatError(f"the graph has a cycle through '{child}'")
                else:
                    stack.pop()
                    mark[name] = 2
                    order.append(name)
        return order

    def _private(self, name: str) -> bool:
        """True if ``name`` feeds exactly one node and nobody asked for it: it may be fused."""
        return self.consumers.get(name, 0) == 1 and name not in self.protected

    def _op(self, name: str) -> str:
        node = self.nodes.get(name)
        return "" if node is None else node.op

    def _const_value(self, name: str) -> torch.Tensor | None:
        return self.module.const(name) if self._op(name) == "Const" else None

    def _is_const_scalar(self, name: str, value: float) -> bool:
        c = self._const_value(name)
        return c is not None and c.numel() == 1 and float(c.reshape(())) == value

    def _rewrite_prelu(self) -> None:
        """max(0, x) + alpha * min(0, x) (how converters spell PReLU) -> one Prelu node."""
        for node in list(self.nodes.values()):
            if node.op not in ("Add", "AddV2") or len(node.inputs) != 2:
                continue
            for a_name, b_name in (node.inputs, node.inputs[::-1]):
                found = self._match_prelu(a_name, b_name)
                if found is not None:
                    x, alpha, dropped = found
                    self.nodes[node.name] = GraphNode(node.name, "Prelu", [x, alpha])
                    for name in dropped:
                        for ref in self.nodes[name].inputs:
                            self.consumers[ref] -= 1
                        del self.nodes[name]
                    self.consumers[x] = self.consumers.get(x, 0) + 1
                    self.consumers[alpha] = self.consumers.get(alpha, 0) + 1
                    break

    def _match_prelu(self, a_name: str, b_name: str) -> tuple[str, str, list[str]] | None:
        a, b = self.nodes.get(a_name), self.nodes.get(b_name)
        if a is None or b is None or a.op != "Maximum" or b.op != "Mul":
            return None
        xs = [n for n in a.inputs if not self._is_const_scalar(n, 0.0)]
        if len(a.inputs) != 2 or len(xs) != 1:
            return None
        x = xs[0]
        mins = [n for n in b.inputs if self._op(n) == "Minimum"]
        if len(b.inputs) != 2 or len(mins) != 1:
            return None
        m_name = mins[0]
        alpha = b.inputs[1] if b.inputs[0] == m_name else b.inputs[0]
        m = self.nodes[m_name]
        if self._op(alpha) != "Const" or x not in m.inputs:
            return None
        if not any(self._is_const_scalar(n, 0.0) for n in m.inputs if n != x):
            return None
        if not all(self._private(n) for n in (a_name, b_name, m_name)):
            return None
        return x, alpha, [a_name, b_name, m_name]

    # ---- compile
    def compile(self) -> _Plan:
        for name in self._order():
            node = self.nodes[name]
            if node.op not in SUPPORTED_OPS:
                raise UnsupportedOp(
                    f"TF.js graph node '{name}' uses op '{node.op}', which the torch executor "
                    "does not implement")
            if node.op == "Const":
                value = self.module.const(name)
                self.info[name] = _Info(PLAIN, value.dim(), value)
                continue
            if node.op == "Placeholder":
                dims = node.attrs.get("shape") or {}
                rank = (len(dims.get("dim", [])) if isinstance(dims, dict) else 0) or 4
                self.info[name] = _Info(NCHW if rank == 4 else PLAIN, rank)
                continue
            if self.fuse and self._try_fold(node):
                continue
            step, info = self._build(node)
            self.steps.append(step)
            self.producer[step.name] = step
            self.info[name] = info
        if self.module.channels_last:  # oneDNN's NHWC kernels: up to ~1.5x faster on CPU
            for step in self.steps:
                if isinstance(step, _ConvStep):
                    step.weight = step.weight.contiguous(memory_format=torch.channels_last)
        return self._finish()

    def _finish(self) -> _Plan:
        last_use: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for ref in step.inputs:
                last_use[ref] = i
        frees: list[list[str]] = [[] for _ in self.steps]
        for ref, i in last_use.items():
            if ref not in self.protected:
                frees[i].append(ref)
        consts = {t: c for t in self.targets if (c := self.info[t].const) is not None}
        values = {n: i for n, i in self.info.items() if i.const is None}
        return _Plan(self.steps, frees, consts, {t: self.info[t] for t in self.targets}, values)

    def _runtime_inputs(self, node: GraphNode) -> list[str]:
        return [n for n in node.inputs if self.info[n].const is None]

    def _per_channel(self, name: str, channels: int) -> torch.Tensor | None:
        c = self.info[name].const
        if c is None or not c.is_floating_point():
            return None
        if c.numel() == 1:
            return c.reshape(1).expand(channels)
        if c.numel() == channels and c.shape[-1] == channels:
            return c.reshape(channels)
        return None

    def _try_fold(self, node: GraphNode) -> bool:
        """Fold ``node`` into the convolution/dense step that produces its only runtime input."""
        runtime = self._runtime_inputs(node)
        if len(runtime) != 1:
            return False
        src = runtime[0]
        step = self.producer.get(src)
        if not isinstance(step, _AffineStep) or not self._private(src):
            return False
        if isinstance(step, _ConvStep) != (self.info[src].layout == NCHW):
            return False
        c_names = [n for n in node.inputs if n != src]
        ch = step.out_channels
        ok = False
        op = node.op
        if op in ("Mul", "Add", "AddV2", "BiasAdd", "Sub") and len(c_names) == 1:
            c = self._per_channel(c_names[0], ch)
            if c is not None and op == "Mul":
                ok = step.scale(c)
            elif c is not None and op == "Sub":
                ok = node.inputs[0] == src and step.shift(-c)
            elif c is not None:
                ok = step.shift(c)
        elif op in ("Minimum", "Maximum") and len(c_names) == 1:
            c = self.info[c_names[0]].const
            if c is not None and c.numel() == 1 and c.is_floating_point():
                v = float(c.reshape(()))
                ok = step.clamp(None, v) if op == "Minimum" else step.clamp(v, None)
        elif op in _BN_OPS and node.inputs[0] == src:
            bn = self._batchnorm_affine(node)
            ok = bn is not None and step.scale(bn[0]) and step.shift(bn[1])
        elif op in _ACT_OPS:
            act = self._activation(node, [op], node.inputs[1:], ch)
            ok = act is not None and (
                step.clamp(act.lo, act.hi) if act.kind == "clamp" else step.activate(act))
        if not ok:
            return False
        del self.producer[src]
        step.name = node.name
        self.producer[node.name] = step
        self.info[node.name] = self.info[src]
        return True

    def _batchnorm_affine(self, node: GraphNode) -> tuple[torch.Tensor, torch.Tensor] | None:
        consts = [self.info[n].const for n in node.inputs[1:5]]
        if any(c is None for c in consts) or len(consts) != 4:
            return None
        gamma, beta, mean, var = (c for c in consts if c is not None)
        eps = float(node.attrs.get("epsilon") or 0.0)
        scale = gamma * torch.rsqrt(var + eps)
        return scale, beta - mean * scale

    def _activation(self, node: GraphNode, ops: Sequence[str], args: Sequence[str],
                    channels: int | None) -> _Activation | None:
        """The activation named by ``ops`` (a fused_ops tail or a single op); None if none."""
        act = _Activation()
        for op in ops:
            if op == "Relu":
                act = _Activation("relu")
            elif op == "Relu6":
                act = _Activation("clamp", 0.0, 6.0)
            elif op == "LeakyRelu":
                alpha = node.attrs.get("leakyrelu_alpha", node.attrs.get("alpha"))
                act = _Activation("leaky", alpha=0.2 if alpha is None else float(alpha))
            elif op == "Prelu":
                if not args or self.info[args[0]].const is None:
                    return None
                a = self.info[args[0]].const
                assert a is not None
                if channels is not None and (a.numel() == channels or a.numel() == 1):
                    a = a.reshape(-1).expand(channels).contiguous()
                elif channels is not None:
                    return None
                act = _Activation("prelu", alpha=a)
            elif op in ("Elu", "Selu", "Sigmoid", "Tanh", "Softplus"):
                act = _Activation(op)
            else:
                raise UnsupportedOp(f"node '{node.name}': fused activation '{op}'")
        return act

    # ---- builders (one per op family)
    def _build(self, node: GraphNode) -> tuple[_Step, _Info]:
        op = node.op
        if op in _CONV_OPS:
            return self._build_conv(node)
        if op in _MATMUL_OPS:
            return self._build_matmul(node)
        if op in _BINARY or op == "Prelu":
            return self._build_binary(node)
        if op in _UNARY or op in ("LeakyRelu",):
            return self._build_unary(node)
        if op in _BN_OPS:
            return self._build_batchnorm(node)
        if op in _REDUCE:
            return self._build_reduce(node)
        if op in _PAD_OPS:
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

    def _build_conv(self, node: GraphNode) -> tuple[_Step, _Info]:
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
            if isinstance(pad_step, _PadStep) and pad_step.spatial and self._private(src):
                self.steps.remove(pad_step)
                del self.producer[src]
                t, b, left, r = pad_step.spatial
                pads = (pads[0] + t, pads[1] + b, pads[2] + left, pads[3] + r)
                src = pad_step.inputs[0]
        step = _ConvStep(node.name, src, self._need(src, NCHW), weight, None,
                         (strides[1], strides[2]), (dil[1], dil[2]), groups,
                         "SAME" if padding == "SAME" else "EXPLICIT", pads)
        self._fused_tail(node, step)
        return step, _Info(NCHW, 4)

    def _fused_tail(self, node: GraphNode, step: _AffineStep) -> None:
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

    def _build_matmul(self, node: GraphNode) -> tuple[_Step, _Info]:
        a, b = node.inputs[0], node.inputs[1]
        ta = bool(node.attrs.get("transpose_a"))
        tb = bool(node.attrs.get("transpose_b"))
        bc = self.info[b].const
        if self.info[a].rank != 2:
            raise UnsupportedOp(f"node '{node.name}': MatMul of rank {self.info[a].rank}")
        if bc is not None and not ta:
            weight = (bc if tb else bc.t()).contiguous()  # (out, in) for F.linear
            step = _LinearStep(node.name, a, self._need(a, PLAIN), weight, None)
            self._fused_tail(node, step)
            return step, _Info(PLAIN, 2)
        if node.attrs.get("fused_ops"):
            raise UnsupportedOp(f"node '{node.name}': fused MatMul with a non-constant matrix")
        operands = [self.info[a].const, bc]
        runtime = [n for n, c in zip((a, b), operands, strict=True) if c is None]

        def matmul(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            return (x.t() if ta else x) @ (y.t() if tb else y)

        return _FnStep(node.name, runtime, [None] * len(runtime), matmul), _Info(PLAIN, 2)

    def _operand(self, name: str, layout: str, rank: int) -> torch.Tensor | None:
        """A constant operand shaped to broadcast against values stored in ``layout``."""
        c = self.info[name].const
        if c is None:
            return None
        if layout == NCHW and rank == 4:
            return _to_nchw(c.reshape((1,) * (4 - c.dim()) + tuple(c.shape))).contiguous()
        return c

    def _build_binary(self, node: GraphNode) -> tuple[_Step, _Info]:
        names = node.inputs[:2]
        rank = max(self.info[n].rank for n in names)
        layout = NCHW if any(self.info[n].layout == NCHW for n in names) and rank == 4 else PLAIN
        operands = [self._operand(n, layout, rank) for n in names]
        runtime = [n for n, c in zip(names, operands, strict=True) if c is None]
        converts = [self._need(n, layout) for n in runtime]
        fn2 = _prelu if node.op == "Prelu" else _BINARY[node.op]

        def binary(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            x, y = (c if c is not None else next(vals) for c in operands)
            return fn2(x, y)

        return _FnStep(node.name, runtime, converts, binary), _Info(layout, rank)

    def _build_unary(self, node: GraphNode) -> tuple[_Step, _Info]:
        src = node.inputs[0]
        if node.op == "LeakyRelu":
            act = self._activation(node, ["LeakyRelu"], [], None)
            assert act is not None
            fn: Callable[[torch.Tensor], torch.Tensor] = act
        else:
            fn = _UNARY[node.op]
        return (_FnStep(node.name, [src], [None], lambda args: fn(args[0])),
                _Info(self.info[src].layout, self.info[src].rank))

    def _build_batchnorm(self, node: GraphNode) -> tuple[_Step, _Info]:
        self._check_nhwc(node)
        affine = self._batchnorm_affine(node)
        if affine is None:
            raise UnsupportedOp(f"node '{node.name}': batch norm with non-constant statistics")
        src = node.inputs[0]
        info = self.info[src]
        scale, shift = (self._shape_channel(t, info) for t in affine)

        def bn(args: list[torch.Tensor]) -> torch.Tensor:
            return args[0] * scale + shift

        return _FnStep(node.name, [src], [None], bn), _Info(info.layout, info.rank)

    @staticmethod
    def _shape_channel(t: torch.Tensor, info: _Info) -> torch.Tensor:
        return t.reshape(-1, 1, 1) if info.layout == NCHW else t

    def _build_reduce(self, node: GraphNode) -> tuple[_Step, _Info]:
        src = node.inputs[0]
        info = self.info[src]
        axes = sorted({a % info.rank for a in self._const_ints(node.inputs[1])})
        keep = bool(node.attrs.get("keep_dims"))
        reduce = _REDUCE[node.op]
        layout = info.layout
        # NCHW storage keeps TF's axis order after reducing iff H and W both go, or C goes.
        if layout == NCHW and not keep and not ({1, 2} <= set(axes) or 3 in axes):
            layout = PLAIN
        convert = self._need(src, layout)
        dims = [_TF_TO_TORCH_AXIS[a] for a in axes] if layout == NCHW else axes
        out_rank = info.rank if keep else info.rank - len(axes)
        out_layout = NCHW if layout == NCHW and keep else PLAIN
        return (_FnStep(node.name, [src], [convert], lambda args: reduce(args[0], dims, keep)),
                _Info(out_layout, out_rank))

    def _build_pad(self, node: GraphNode) -> tuple[_Step, _Info]:
        src = node.inputs[0]
        info = self.info[src]
        flat = self._const_ints(node.inputs[1])
        pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
        if len(pairs) != info.rank:
            raise GraphFormatError(f"node '{node.name}': paddings do not match the rank")
        value = 0.0
        if node.op == "PadV2" and len(node.inputs) > 2:
            c = self.info[node.inputs[2]].const
            value = 0.0 if c is None else float(c.reshape(()))
        mode = "constant"
        if node.op == "MirrorPad":
            mode = {"REFLECT": "reflect", "SYMMETRIC": "symmetric"}.get(
                str(node.attrs.get("mode")), "")
            if mode == "symmetric" or not mode:
                raise UnsupportedOp(f"node '{node.name}': MirrorPad mode {node.attrs.get('mode')}")
        torch_pairs = [pairs[a] for a in _TORCH_TO_TF_AXIS] if info.layout == NCHW else pairs
        flat_torch = [p for pair in reversed(torch_pairs) for p in pair]

        def pad(args: list[torch.Tensor]) -> torch.Tensor:
            if mode == "constant":
                return F.pad(args[0], flat_torch, value=value)
            return F.pad(args[0], flat_torch, mode=mode)

        spatial = None
        if (info.layout == NCHW and mode == "constant" and value == 0.0
                and pairs[0] == (0, 0) and pairs[3] == (0, 0) and min(flat) >= 0):
            spatial = (pairs[1][0], pairs[1][1], pairs[2][0], pairs[2][1])
        return (_PadStep(node.name, [src], [None], pad, spatial), _Info(info.layout, info.rank))

    def _build_reshape(self, node: GraphNode) -> tuple[_Step, _Info]:
        src = node.inputs[0]
        shape = self._const_ints(node.inputs[1])
        return (_FnStep(node.name, [src], [self._need(src, PLAIN)],
                        lambda args: args[0].reshape(shape)), _Info(PLAIN, len(shape)))

    def _build_squeeze(self, node: GraphNode) -> tuple[_Step, _Info]:
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

        return (_FnStep(node.name, [src], [self._need(src, PLAIN)], squeeze),
                _Info(PLAIN, rank - len(dims)))

    def _build_concat(self, node: GraphNode) -> tuple[_Step, _Info]:
        names = node.inputs[:-1]
        rank = self.info[names[0]].rank
        axis = self._const_ints(node.inputs[-1])[0] % rank
        layout = NCHW if rank == 4 and any(self.info[n].layout == NCHW for n in names) else PLAIN
        dim = _TF_TO_TORCH_AXIS[axis] if layout == NCHW else axis
        operands = [self._operand(n, layout, rank) for n in names]
        runtime = [n for n, c in zip(names, operands, strict=True) if c is None]

        def concat(args: list[torch.Tensor]) -> torch.Tensor:
            vals = iter(args)
            return torch.cat([c if c is not None else next(vals) for c in operands], dim=dim)

        return (_FnStep(node.name, runtime, [self._need(n, layout) for n in runtime], concat),
                _Info(layout, rank))

    def _build_softmax(self, node: GraphNode) -> tuple[_Step, _Info]:
        src = node.inputs[0]
        info = self.info[src]
        dim = 1 if info.layout == NCHW else -1
        return (_FnStep(node.name, [src], [None], lambda args: torch.softmax(args[0], dim)),
                _Info(info.layout, info.rank))

    def _build_cast(self, node: GraphNode) -> tuple[_Step, _Info]:
        src = node.inputs[0]
        target = {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_BOOL": torch.bool}
        dst = node.attrs.get("DstT")
        if dst not in target:
            raise UnsupportedOp(f"node '{node.name}': Cast to {dst}")
        dtype = target[str(dst)]
        return (_FnStep(node.name, [src], [None], lambda args: args[0].to(dtype)),
                _Info(self.info[src].layout, self.info[src].rank))


# ------------------------------------------------------------------------------------ module

_MAX_PLANS = 8


class TFJSGraphModule(nn.Module):
    """Executes a parsed TF.js graph in torch; any node's value can be asked for by name.

    4-D inputs are fed NCHW (TF's NHWC axes translated inside), 4-D outputs come back NCHW,
    other tensors in TF's own layout. Constants are buffers, so ``.to()`` moves them; the
    compiled plans (one per set of requested nodes) are rebuilt after that.
    """

    def __init__(self, graph: GraphModel, fuse: bool = True, channels_last: bool = True) -> None:
        super().__init__()
        self.graph_def = graph
        self.fuse = fuse
        self.channels_last = channels_last
        self._buffer_of: dict[str, str] = {}
        for i, (name, value) in enumerate(graph.weights.items()):
            self.register_buffer(f"const_{i}", torch.from_numpy(np.array(value)))
            self._buffer_of[name] = f"const_{i}"
        self._plans: dict[tuple[str, ...], _Plan] = {}

    @classmethod
    def from_file(cls, model_json: Path, fuse: bool = True, channels_last: bool = True
                  ) -> TFJSGraphModule:
        return cls(parse_graph_model(model_json), fuse=fuse, channels_last=channels_last)

    def const(self, name: str) -> torch.Tensor:
        buf = getattr(self, self._buffer_of[name])
        assert isinstance(buf, torch.Tensor)
        return buf

    def node_names(self) -> list[str]:
        return list(self.graph_def.nodes)

    def _apply(self, *args: Any, **kwargs: Any) -> TFJSGraphModule:
        self._plans = {}  # plans hold folded copies of the buffers: rebuild on .to()/.double()
        super()._apply(*args, **kwargs)
        return self

    def plan(self, outputs: Sequence[str]) -> _Plan:
        key = tuple(outputs)
        if key not in self._plans:
            if len(self._plans) >= _MAX_PLANS:  # each plan holds folded weight copies
                del self._plans[next(iter(self._plans))]
            with torch.no_grad():
                self._plans[key] = _Compiler(self, key).compile()
        return self._plans[key]

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Sequence[str]
            ) -> dict[str, torch.Tensor]:
        """Evaluate ``outputs`` given placeholder values (4-D ones NCHW)."""
        plan = self.plan(outputs)
        env: dict[str, torch.Tensor] = dict(feeds)
        for step, frees in zip(plan.steps, plan.frees, strict=True):
            args = []
            for ref, conv in zip(step.inputs, step.converts, strict=True):
                if ref not in env:
                    raise KeyError(f"placeholder '{ref}' was not fed")
                args.append(env[ref] if conv is None else _CONVERT[conv](env[ref]))
            env[step.name] = step.run(args)
            for ref in frees:
                del env[ref]
        result: dict[str, torch.Tensor] = {}
        for name in outputs:
            value = plan.consts[name] if name in plan.consts else env[name]
            info = plan.layouts[name]
            result[name] = _to_nchw(value) if info.layout == PLAIN and info.rank == 4 else value
        return result

    def stages(self, output: str) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """The steps up to ``output`` as a chain of stages, cut where one 4-D value is live.

        Stages take and return 4-D values NCHW like ``run``; the last returns ``output``.
        """
        placeholders = self.graph_def.placeholders
        plan = self.plan((output,))
        if len(placeholders) != 1 or output in plan.consts:
            raise KeyError(f"cannot split the graph at '{output}'")
        cuts = [(i, name) for i, name in single_live_cuts(
            [s.inputs for s in plan.steps], [[s.name] for s in plan.steps], placeholders[0])
            if plan.values[name].rank == 4]
        starts = [(-1, placeholders[0]), *cuts]
        ends = [*cuts, (len(plan.steps) - 1, output)]
        return [partial(self._run_stage, plan, src, a + 1, b + 1, dst)
                for (a, src), (b, dst) in zip(starts, ends, strict=True)]

    @staticmethod
    def _run_stage(plan: _Plan, src: str, start: int, stop: int, dst: str,
                   x: torch.Tensor) -> torch.Tensor:
        stored = plan.values[src]
        env = {src: _to_plain(x) if stored.layout == PLAIN and stored.rank == 4 else x}
        for step, frees in zip(plan.steps[start:stop], plan.frees[start:stop], strict=True):
            args = [env[ref] if conv is None else _CONVERT[conv](env[ref])
                    for ref, conv in zip(step.inputs, step.converts, strict=True)]
            env[step.name] = step.run(args)
            for ref in frees:
                if ref != dst:
                    del env[ref]
        out, info = env[dst], plan.values[dst]
        return _to_nchw(out) if info.layout == PLAIN and info.rank == 4 else out

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        """Single-input graphs: feed ``x`` to the one placeholder, return the named nodes."""
        placeholders = self.graph_def.placeholders
        if len(placeholders) != 1:
            raise ValueError(f"graph has {len(placeholders)} placeholders; use run() with feeds")
        return self.run({placeholders[0]: x}, nodes)

    def forward(self, x: torch.Tensor, node: str) -> torch.Tensor:
        return self.forward_nodes(x, (node,))[node]
