"""How an explanation method describes itself: its maps, options, and how to build it.

Why a leaf module: the registry and the method modules (``facexplain.methods``), the report and
the benchmarks all read these rows; keeping them below every one of those layers means none of
them has to import another to learn what a method returns or how to draw it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer
    from facexplain.results import Figure

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


def delta_map(caption: str) -> MapSpec:
    """The signed Δ map most methods return (not drawn; saved for the benchmarks)."""
    return MapSpec("delta", caption, signed=True, vrange=None, cmap="RdBu_r", show=False)


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
    # The sampling methods (CorrRISE, RISE, LIME): samples per face (None: each method's
    # default; RISE and LIME stop earlier once their map converges) and the seed of their
    # random masks, so a map is reproducible.
    samples: int | None = None
    seed: int = 0
    # xSSAB and FGGB split the similarity at the decision threshold: None = the backbone's
    # calibrated threshold for these weights (0 when there is none).
    threshold: float | None = None
    # x-face occlusion's patch sizes and stride in pixels (None: the paper's 7/14/28 px and
    # 5 px on a 112 px crop, scaled to the backbone's crop).
    xface_patches: tuple[int, ...] | None = None
    xface_stride: int | None = None


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
    can run on a backbone at all (``--method all`` skips it where not; None: everywhere);
    ``in_all`` False leaves a slow method out of ``--method all`` (it runs when named, and the
    benchmarks still rank it; ``facexplain methods`` and ``explain`` say so).
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
    # the note says which photo carries the difference: the report prints it only where the
    # planted-difference game measured that the method names the altered photo (>= 0.8)
    names_face: bool = False
    in_all: bool = True

    def map_spec(self, name: str) -> MapSpec | None:
        return next((m for m in self.maps if m.name == name), None)
