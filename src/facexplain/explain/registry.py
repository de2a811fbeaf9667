"""The method registry: every explanation method declares itself once, everything else reads it.

Why: a method used to be listed in six places (CLI help, ``--method all``, the faithfulness
benchmark, the report's titles...). Now a method is one module that calls ``register_method``
with a ``MethodInfo``: its name, title, family, the maps it returns with how to show each, how
to build it from a backbone scorer, and which map ranks pixels for the faithfulness benchmark.

Where methods come from, in this order: the modules of the package ``facexplain.explain.methods``
(built-ins: drop a file there), the ``facexplain.methods`` entry-point group (installed plugins),
and the modules named in ``$FACEXPLAIN_PLUGINS`` (comma-separated; handy for a notebook or a
test). They are imported on first use of the registry, never at ``import facexplain``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from facexplain.errors import FacexplainError, InvalidArgument, UnknownMethod

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.registry import BackboneSpec
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer
    from facexplain.report.html import Figure

PLUGINS_ENV = "FACEXPLAIN_PLUGINS"
ENTRY_POINT_GROUP = "facexplain.methods"
Family = Literal["black-box", "layer"]


@dataclass(frozen=True)
class MapSpec:
    """How one returned map reads and is drawn.

    ``signed``: values of both signs mean something (drawn with a diverging colormap around
    0); ``vrange``: fixed (min, max) for drawing, or None for the map's own range; ``frame``:
    'pixels' (aligned-crop pixels) or 'grid' (cells upsampled to pixels); ``show``: drawn in
    the report (every map is saved as .npy either way); ``reading``: how to read it, in plain
    words, printed under the picture.
    """

    name: str
    caption: str
    signed: bool = False
    vrange: tuple[float | None, float | None] | None = (0.0, None)
    cmap: str = "jet"
    frame: Literal["pixels", "grid"] = "pixels"
    show: bool = True
    reading: str = ""


@dataclass(frozen=True)
class ExplainOptions:
    """Settings shared by the methods (each reads the ones it needs; paper defaults)."""

    patch: int = 16
    stride: int = 8
    fill: str | torch.Tensor = "mean-face"
    # Reference of saliency/deconv/guided/Grad-CAM: None = black; integrated gradients uses
    # ``fill`` (its baseline follows --fill). The faithfulness benchmark passes its shared fill
    # here so every method removes pixels alike.
    gradient_fill: str | torch.Tensor | None = None
    # Integrated-gradients steps: None = adaptive (double from 32 until the completeness error
    # is under 5% of the similarity change, at most 512).
    ig_steps: int | None = None
    attention: str = "L"
    incremental: bool = True
    # Pairwise occlusion's opt-in approximate mode (Krypton: projective-field threshold and
    # adaptive drill-down, ``explain.approx_occlusion``) with its default settings.
    approx: bool = False
    batch_size: int = 32
    progress: bool = False


Orientation = Literal["difference", "similarity", "magnitude"]


@dataclass(frozen=True)
class RankedMap:
    """A map the faithfulness benchmark orders pixels by, and how to read it.

    ``orientation`` 'difference': high where the faces differ (a Δ map); 'similarity': high
    where they are alike (reversed for difference curves); 'magnitude': unsigned, the same
    order for both curves (the classic |gradient| picture). ``suffix`` names the row
    (``method-suffix``; empty: the method's own name).
    """

    map: str
    orientation: Orientation = "difference"
    suffix: str = ""

    def row(self, method: str) -> str:
        return f"{method}-{self.suffix}" if self.suffix else method

    def ranking(self, maps: Mapping[str, torch.Tensor], kind: str) -> torch.Tensor:
        """The (2, H, W) order for a 'difference' or 'similarity' curve, highest first."""
        m = maps[self.map]
        if self.orientation == "magnitude":
            return m
        return m if (self.orientation == "difference") == (kind == "difference") else -m


Builder = Callable[["PairScorer", ExplainOptions], "Explainer"]
Checker = Callable[[ExplainOptions, "BackboneSpec"], None]
FigureHook = Callable[["ExplanationMaps", "torch.Tensor", Path], list["Figure"]]
NoteHook = Callable[["ExplanationMaps"], str]


def _no_check(options: ExplainOptions, spec: BackboneSpec) -> None:
    del options, spec


@dataclass(frozen=True)
class MethodInfo:
    """One explanation method, as the CLI, report, benchmarks and web app see it.

    ``build`` makes the explainer from the backbone's scorer (black-box methods use only its
    pair score, layer methods its model and nodes); ``check`` validates options against the
    backbone *before* any model loads (fail fast); ``rankings`` are the maps the
    faithfulness benchmark orders pixels by, one row each (empty: not ranked);
    ``figures``/``note`` add method-specific pictures and text to its report section;
    ``prepare`` makes a missing asset (a trained head); ``supports`` says whether the method
    can run on a backbone at all (``--method all`` skips it where not; None: everywhere).
    """

    name: str
    title: str
    family: Family
    description: str
    maps: tuple[MapSpec, ...]
    build: Builder
    check: Checker = _no_check
    rankings: tuple[RankedMap, ...] = (RankedMap("delta"),)
    pairwise: bool = False
    figures: FigureHook | None = None
    note: NoteHook | None = None
    prepare: Callable[[str, bool], None] | None = None
    supports: Callable[[BackboneSpec], bool] | None = None

    def map_spec(self, name: str) -> MapSpec | None:
        return next((m for m in self.maps if m.name == name), None)


@dataclass
class _Registry:
    methods: dict[str, MethodInfo] = field(default_factory=dict)
    loaded: bool = False


_REGISTRY = _Registry()  # filled once per process by discovery; registration is idempotent


def register_method(info: MethodInfo) -> MethodInfo:
    """Add (or replace, by name) a method; returns it so a module can keep a reference."""
    if not info.name or not info.name.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument(f"method name must be alphanumeric (with - or _): {info.name!r}")
    _REGISTRY.methods[info.name] = info
    return info


def unregister_method(name: str) -> None:
    """Remove a method (a plugin being unloaded, a test cleaning up); unknown names are ignored."""
    _REGISTRY.methods.pop(name, None)


def _discover() -> None:
    if _REGISTRY.loaded:
        return
    _REGISTRY.loaded = True
    package = importlib.import_module("facexplain.explain.methods")
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise FacexplainError(f"cannot import method plugin '{name}' named in "
                                  f"${PLUGINS_ENV}: {exc}") from None


def all_methods() -> dict[str, MethodInfo]:
    """Every registered method by name, built-ins in their declared order first."""
    _discover()
    return dict(sorted(_REGISTRY.methods.items(), key=lambda kv: (_order(kv[0]), kv[0])))


BUILTIN_ORDER = ("occlusion", "occlusion-per-face", "saliency", "deconv", "guided", "ig",
                 "gradcam", "xcos", "parts")


def _order(name: str) -> int:
    return BUILTIN_ORDER.index(name) if name in BUILTIN_ORDER else len(BUILTIN_ORDER)


def method_names() -> tuple[str, ...]:
    return tuple(all_methods())


def get_method(name: str) -> MethodInfo:
    methods = all_methods()
    if name not in methods:
        raise UnknownMethod(f"unknown method '{name}'; valid: {', '.join(methods)} or all")
    return methods[name]


def parse_methods(spec: str) -> tuple[MethodInfo, ...]:
    """'all', one name, or a comma-separated list -> the registered methods, validated."""
    if spec.strip() == "all":
        return tuple(all_methods().values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise UnknownMethod(f"no method given; valid: {', '.join(method_names())} or all")
    return tuple(get_method(n) for n in dict.fromkeys(names))
