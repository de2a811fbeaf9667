"""Run an ONNX graph as a differentiable torch module, with every node output reachable by name.

Why not onnx2torch: it needs torchvision, and explanations need intermediate maps by their graph
names. The executor is deliberately small: initializers (and anything computable from them
alone, e.g. weight ``Reshape`` or ``Constant`` nodes) become buffers at build time, BatchNorm is
folded into the preceding Conv where nothing else reads the Conv output, and the remaining nodes
run in the file's (topological) order. Unsupported ops fail at build time, naming the op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel, Stage
from facexplain.backbones.stages import single_live_cuts

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
    strides = a.get("strides", [1] * n)
    dil = a.get("dilations", [1] * n)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        return list(a.get("pads", [0] * 2 * n)) if auto == "NOTSET" else [0] * 2 * n
    begin, end = [], []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dil, strict=True):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _pad_for(x: torch.Tensor, pads: list[int], value: float = 0.0) -> tuple[torch.Tensor, Any]:
    """Symmetric pads go to the conv/pool itself (faster); asymmetric ones become an F.pad."""
    n = len(pads) // 2
    if pads[:n] == pads[n:]:
        return x, tuple(pads[:n])
    torch_pads: list[int] = []
    for i in reversed(range(n)):
        torch_pads += [pads[i], pads[i + n]]
    return F.pad(x, torch_pads, value=value), 0


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


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return torch.from_numpy(np.array(numpy_helper.to_array(value)))
    return value


@dataclass
class _Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: Attrs = field(default_factory=dict)


class OnnxGraph(nn.Module):
    """An ONNX graph as an ``nn.Module``; ``forward_nodes`` returns any node outputs by name.

    ``fold_batchnorm`` merges a BatchNormalization into the Conv feeding it when that Conv's
    output has no other reader (its name then disappears, unless listed in ``keep``).
    ``channels_last`` stores 4-D weights and runs 4-D inputs in NHWC memory order, which is
    markedly faster for depthwise convolutions on CPU; results are the same tensors logically.
    """

    def __init__(self, model: onnx.ModelProto | str | Path, *, fold_batchnorm: bool = True,
                 channels_last: bool = False, keep: Iterable[str] = ()) -> None:
        super().__init__()
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
        graph = proto.graph
        consts: dict[str, torch.Tensor] = {
            i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in graph.initializer
        }
        nodes = [
            _Node(n.op_type, n.name, list(n.input), list(n.output),
                  {a.name: _attr_value(a) for a in n.attribute})
            for n in graph.node
        ]
        unsupported = sorted({n.op for n in nodes if n.op not in OPS})
        if unsupported:
            raise UnsupportedOnnxGraph(f"ONNX ops not supported by OnnxGraph: {unsupported}")
        self.input_names = [i.name for i in graph.input if i.name not in consts]
        self.output_names = [o.name for o in graph.output]
        self.channels_last = channels_last
        nodes = self._fold_constants(nodes, consts)
        self.folded: set[str] = set()
        if fold_batchnorm:
            nodes = self._fold_batchnorm(nodes, consts, set(keep) | set(self.output_names))
        self.nodes = nodes
        self.node_names = [o for n in nodes for o in n.outputs if o]
        self._producer = {o: i for i, n in enumerate(nodes) for o in n.outputs if o}
        last_read = {name: i for i, n in enumerate(nodes) for name in n.inputs}
        # Intermediates to drop once read for the last time (keeps batch memory flat).
        self._free_after: list[list[str]] = [[] for _ in nodes]
        for name, i in last_read.items():
            if name in self._producer:
                self._free_after[i].append(name)
        self._buffer_of: dict[str, str] = {}
        for i, (name, t) in enumerate(consts.items()):
            if channels_last and t.dim() == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
            self._buffer_of[name] = f"const_{i}"
            self.register_buffer(f"const_{i}", t, persistent=False)

    @staticmethod
    def _fold_constants(nodes: list[_Node], consts: dict[str, torch.Tensor]) -> list[_Node]:
        """Evaluate nodes that read only constants once, now (weight reshapes, Constant)."""
        rest = []
        with torch.no_grad():
            for n in nodes:
                if all(not i or i in consts for i in n.inputs):
                    out = OPS[n.op]([consts[i] if i else None for i in n.inputs], n.attrs)
                    outs = out if isinstance(out, tuple) else (out,)
                    consts.update({name: t for name, t in zip(n.outputs, outs, strict=False)})
                else:
                    rest.append(n)
        return rest

    def _fold_batchnorm(self, nodes: list[_Node], consts: dict[str, torch.Tensor],
                        keep: set[str]) -> list[_Node]:
        """Conv -> BN becomes one Conv with scaled weights; only where the result is identical."""
        readers: dict[str, int] = {}
        for n in nodes:
            for i in n.inputs:
                readers[i] = readers.get(i, 0) + 1
        producer = {n.outputs[0]: n for n in nodes if n.outputs}
        dropped: set[int] = set()
        for bn in nodes:
            conv = producer.get(bn.inputs[0]) if bn.op == "BatchNormalization" else None
            if (conv is None or conv.op != "Conv" or readers[conv.outputs[0]] != 1
                    or conv.outputs[0] in keep or len(bn.outputs) > 1
                    or not all(i in consts for i in conv.inputs[1:] + bn.inputs[1:5] if i)):
                continue
            w = consts[conv.inputs[1]].double()
            scale, beta, mean, var = (consts[i].double() for i in bn.inputs[1:5])
            has_bias = len(conv.inputs) > 2 and conv.inputs[2]
            bias = consts[conv.inputs[2]].double() if has_bias else torch.zeros_like(mean)
            factor = scale / torch.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
            stem = conv.outputs[0]
            consts[stem + "::w"] = (w * factor.reshape(-1, *[1] * (w.dim() - 1))).float()
            consts[stem + "::b"] = (beta + (bias - mean) * factor).float()
            conv.inputs = [conv.inputs[0], stem + "::w", stem + "::b"]
            self.folded.add(stem)
            conv.outputs = list(bn.outputs)
            dropped.add(id(bn))
        used = {i for n in nodes if id(n) not in dropped for i in n.inputs}
        for name in [c for c in consts if c not in used]:
            del consts[name]
        return [n for n in nodes if id(n) not in dropped]

    def forward_nodes(self, inputs: torch.Tensor | Mapping[str, torch.Tensor],
                      nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run the graph just far enough to produce ``nodes`` (output or intermediate names)."""
        if isinstance(inputs, torch.Tensor):
            if len(self.input_names) != 1:
                raise ValueError(f"graph has inputs {self.input_names}; pass a mapping")
            inputs = {self.input_names[0]: inputs}
        known = self._producer.keys() | self._buffer_of.keys() | inputs.keys()
        missing = [n for n in nodes if n not in known]
        if missing:
            folded = set(missing) & self.folded
            hint = " (folded into a Conv; build with keep=...)" if folded else ""
            raise KeyError(f"unknown node output(s) {missing}{hint}; "
                           f"e.g. {self.node_names[-5:]}")
        last = max((self._producer[n] for n in nodes if n in self._producer), default=-1)
        env = self._execute(inputs, 0, last + 1, set(nodes))
        return {n: env[n] for n in nodes}  # type: ignore[misc]

    def _execute(self, inputs: Mapping[str, torch.Tensor], start: int, stop: int,
                 wanted: set[str]) -> dict[str, torch.Tensor | None]:
        """Run nodes[start:stop] on ``inputs`` (plus the constants); keeps ``wanted`` alive."""
        env: dict[str, torch.Tensor | None] = {"": None}
        for name, t in inputs.items():
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            env[name] = t
        env.update({k: getattr(self, b) for k, b in self._buffer_of.items()})
        for i in range(start, stop):
            node = self.nodes[i]
            out = OPS[node.op]([env[name] for name in node.inputs], node.attrs)
            if isinstance(out, tuple):
                env.update(zip(node.outputs, out, strict=False))
            else:
                env[node.outputs[0]] = out
            for name in self._free_after[i]:
                if name not in wanted:
                    del env[name]
        return env

    def stages(self, output: str) -> list[Stage]:
        """The nodes up to ``output`` as a chain of stages, cut where one tensor is live."""
        if output not in self._producer or len(self.input_names) != 1:
            raise KeyError(f"cannot split the graph at '{output}'")
        stop = self._producer[output] + 1

        def runtime(names: Sequence[str]) -> list[str]:
            return [n for n in names if n and n not in self._buffer_of]

        cuts = single_live_cuts([runtime(n.inputs) for n in self.nodes[:stop]],
                                [runtime(n.outputs) for n in self.nodes[:stop]],
                                self.input_names[0])
        starts = [(-1, self.input_names[0]), *cuts]
        ends = [*cuts, (stop - 1, output)]
        return [partial(self._run_stage, src, a + 1, b + 1, dst)
                for (a, src), (b, dst) in zip(starts, ends, strict=True)]

    def _run_stage(self, src: str, start: int, stop: int, dst: str,
                   x: torch.Tensor) -> torch.Tensor:
        out = self._execute({src: x}, start, stop, {dst})[dst]
        assert out is not None
        return out

    def forward(self, inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The graph's first output."""
        return self.forward_nodes(inputs, self.output_names[:1])[self.output_names[0]]


class OnnxFaceModel(FaceModel):
    """A FaceModel over an ONNX graph: ``"embedding"`` is an alias of the graph node named."""

    def __init__(self, graph: OnnxGraph, embedding_node: str | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.embedding_node = embedding_node or graph.output_names[0]

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        names = [self.embedding_node if n == EMBEDDING else n for n in nodes]
        out = self.graph.forward_nodes(x, list(dict.fromkeys(names)))
        return {n: out[m] for n, m in zip(nodes, names, strict=True)}

    def stages(self) -> list[Stage]:
        return self.graph.stages(self.embedding_node)
