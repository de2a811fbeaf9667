"""Routing a face model's functional ops through modules Captum can hook.

Why: Captum's deconvnet and guided backprop rewrite the backward pass of ``nn.ReLU`` modules and
``LayerGradCam`` hooks a module's output, but our backbones are graph executors that call
``F.relu`` / ``torch.clamp`` and produce named nodes, not modules. A torch-function mode sends
each ReLU-like call through its own ``nn.ReLU`` (``ReluRoutedScore``), or one chosen tensor
through an ``nn.Identity`` tap (``NodeTappedScore``), only while a method runs.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.errors import InvalidArgument
from facexplain.explain.base import PairScore
from facexplain.scoring import cosine

_RELU_FUNCS: set[Any] = {F.relu, torch.relu, torch.Tensor.relu}
_CLAMP_FUNCS: set[Any] = {torch.clamp, torch.clip, torch.Tensor.clamp, torch.Tensor.clip}
_INPLACE_RELU: set[Any] = {torch.relu_, torch.Tensor.relu_, F.relu_, torch.clamp_,
                           torch.Tensor.clamp_, torch.Tensor.clip_}
_PRELU_FUNCS: set[Any] = {F.prelu, torch.prelu}


def _is_zero(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == 0


def _relu_split(func: Any, args: Sequence[Any], kwargs: dict[str, Any]
                ) -> tuple[torch.Tensor, float | None] | None:
    """(x, upper bound) if ``func(*args)`` is a ReLU, possibly capped (ReLU6); else None."""
    if func in _RELU_FUNCS:
        return args[0], None
    if func is F.relu6:
        return args[0], 6.0
    if func is F.hardtanh:
        lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
        hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
        return (args[0], float(hi)) if _is_zero(lo) else None
    if func in _CLAMP_FUNCS:
        lo = args[1] if len(args) > 1 else kwargs.get("min")
        hi = args[2] if len(args) > 2 else kwargs.get("max")
        if _is_zero(lo) and (hi is None or isinstance(hi, int | float)):
            return args[0], None if hi is None else float(hi)
    return None


class _ReluRouting(TorchFunctionMode):
    """Sends each ReLU call, in call order, through its own ``nn.ReLU`` from ``relus``.

    With ``grow`` (the discovery pass) missing modules are created; otherwise a call beyond the
    list is an error, since Captum only hooked the modules that existed when it started.
    """

    def __init__(self, relus: nn.ModuleList, grow: bool) -> None:
        super().__init__()
        self.relus = relus
        self.grow = grow
        self.calls = 0
        self.prelu_calls = 0
        self.inplace_calls = 0

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        split = _relu_split(func, args, kwargs)
        if split is None:
            if func in _PRELU_FUNCS:
                self.prelu_calls += 1
            elif func in _INPLACE_RELU:
                self.inplace_calls += 1
            return func(*args, **kwargs)
        x, hi = split
        if self.calls >= len(self.relus):
            if not self.grow:
                raise RuntimeError("the score called ReLU more often than in the discovery pass")
            self.relus.append(nn.ReLU())
        y = self.relus[self.calls](x)
        self.calls += 1
        return y if hi is None else torch.clamp(y, max=hi)


class ReluRoutedScore(nn.Module):
    """The pair score as an ``nn.Module`` whose ReLUs are modules (one per call site).

    Call ``discover`` with the inputs first: it runs the score once (no grad) and creates the
    ``nn.ReLU`` modules that Captum's deconvnet / guided backprop then hook.
    """

    def __init__(self, score_fn: PairScore) -> None:
        super().__init__()
        self.score_fn = score_fn
        self.relus = nn.ModuleList()
        self.prelu_sites = 0
        self.inplace_sites = 0

    def discover(self, a: torch.Tensor, b: torch.Tensor) -> int:
        """Create one ``nn.ReLU`` per ReLU call of a forward pass; return how many."""
        self.relus = nn.ModuleList()
        with torch.no_grad(), _ReluRouting(self.relus, grow=True) as mode:
            self.score_fn(a, b)
        self.prelu_sites, self.inplace_sites = mode.prelu_calls, mode.inplace_calls
        return len(self.relus)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with _ReluRouting(self.relus, grow=False):
            return self.score_fn(a, b).reshape(-1)


class _Tap(TorchFunctionMode):
    """Counts tensor-valued calls; remembers them (``index is None``) or passes call number
    ``index`` through ``tap`` so that a module hook sees a tensor the rest of the net uses."""

    def __init__(self, tap: nn.Module | None = None, index: int | None = None) -> None:
        super().__init__()
        self.tap = tap
        self.index = index
        self.count = 0
        self.tapped: list[torch.Tensor] = []
        self.seen: list[weakref.ReferenceType[torch.Tensor]] = []

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if type(out) is torch.Tensor:
            if self.tap is None:
                self.seen.append(weakref.ref(out))
            elif self.count == self.index:
                out = self.tap(out)
                self.tapped.append(out)
            self.count += 1
        return out


class NodeTappedScore(nn.Module):
    """Pair score of a ``FaceModel`` whose ``node`` activation passes through ``self.tap``.

    Both faces run as one batch (A rows first), so the one tap sees the activations of both and
    Captum's ``LayerGradCam`` returns (2N, 1, h, w). ``locate`` finds, once per input shape,
    which tensor-producing call of ``forward_nodes`` yields the node (by identity); each tapped
    pass checks that the node it returns is the tapped tensor, and locates again if not (a
    graph executor that recompiled its plan, say).
    """

    def __init__(self, model: FaceModel, node: str) -> None:
        super().__init__()
        self.model = model
        self.node = node
        self.tap = nn.Identity()
        self._index: dict[tuple[object, ...], int] = {}

    def _key(self, x: torch.Tensor) -> tuple[object, ...]:
        return (tuple(x.shape), x.dtype, x.device.type)

    def locate(self, x: torch.Tensor) -> int:
        key = self._key(x)
        if key not in self._index:
            with torch.no_grad():
                self.model.forward_nodes(x, (EMBEDDING, self.node))  # warm any lazy compile
                with _Tap() as mode:
                    out = self.model.forward_nodes(x, (EMBEDDING, self.node))[self.node]
            hits = [i for i, r in enumerate(mode.seen) if r() is out]
            if not hits:
                raise InvalidArgument(f"node '{self.node}' is not produced by a torch call "
                                      "inside forward_nodes; Grad-CAM cannot tap it")
            self._index[key] = hits[0]  # the producer; later hits are no-op views of it
        return self._index[key]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([a, b])
        for attempt in range(2):
            index = self.locate(x.detach())
            with _Tap(self.tap, index) as mode:
                out = self.model.forward_nodes(x, (EMBEDDING, self.node))
            if len(mode.tapped) == 1 and out[self.node] is mode.tapped[0]:
                break
            self._index.pop(self._key(x), None)
            if attempt:
                raise RuntimeError(f"could not tap node '{self.node}' reliably")
        emb = out[EMBEDDING]
        n = a.shape[0]
        return cosine(emb[:n], emb[n:])
