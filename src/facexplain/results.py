"""What a use case returns: a pair's verdict with each method's maps, and report figures.

Why its own module (in the reports layer): the use case (``api``) builds these, the report
draws them, the web app and the batch runner pass them on; when they lived in ``api`` the
registry and the report imported each other through it. The small types they hold
(``ExplanationMaps``, ``Figure``) live in ``types``. Tensors stay tensors here; pictures are
made by ``report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facexplain.method_info import MapSpec, MethodInfo
from facexplain.types import ExplanationMaps, Figure

__all__ = ["ExplainedMap", "Figure", "MethodResult", "PairExplanation", "Section"]

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.spec import BackboneSpec
    from facexplain.scoring import Calibration
    from facexplain.types import FacePair, Verdict


@dataclass(frozen=True)
class ExplainedMap:
    """One map of one method: values (2, H, W) for faces A and B, and how to read/draw it."""

    spec: MapSpec
    values: torch.Tensor

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class MethodResult:
    """What one registered method says about the pair."""

    method: MethodInfo
    explanation: ExplanationMaps

    @property
    def maps(self) -> tuple[ExplainedMap, ...]:
        """Every returned map with its display spec (maps a method did not declare are drawn
        with the default spec, so nothing it returns is lost)."""
        out = []
        for name, values in self.explanation.maps.items():
            spec = self.method.map_spec(name) or MapSpec(name, name)
            out.append(ExplainedMap(spec, values))
        return tuple(out)

    @property
    def score(self) -> float:
        return self.explanation.score


@dataclass(frozen=True)
class PairExplanation:
    """The answer and the reasons: verdict, aligned faces, and each method's maps."""

    verdict: Verdict
    pair: FacePair
    spec: BackboneSpec
    calibration: Calibration
    results: tuple[MethodResult, ...]
    weights: str | None = None  # fingerprint of the weights explained (records must match)
    skipped: tuple[tuple[str, str], ...] = ()  # methods ``all`` left out, and why

    @property
    def faces(self) -> torch.Tensor:
        return self.pair.tensor


@dataclass(frozen=True)
class Section:
    """A titled part of the report: text and figures (one per method, or a study's part)."""

    title: str
    text: str = ""
    figures: tuple[Figure, ...] = field(default_factory=tuple)
    # (measure, result with its interval, what it was measured on): the method's trust table
    trust: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)
