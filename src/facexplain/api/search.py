"""The search use case: who, among a gallery's identities, is the person in this photo?

Why here and not in the CLI: the ranking, each candidate's decision (the same
``Calibration.decide`` as every verdict, with the same ``VerdictOptions``) and the optional
explanation of the best match are one question; a front end only prints the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facexplain.api.explanation import ExplanationPlan, explain_pair, plan_explanation
from facexplain.api.verdict import calibration_of
from facexplain.errors import InvalidArgument
from facexplain.pipeline import FacePipeline
from facexplain.results import PairExplanation
from facexplain.search.gallery import Candidate, GallerySearch, embed_photo, load_gallery
from facexplain.types import VerdictOptions


@dataclass(frozen=True)
class SearchResult:
    """The ranked identities of one probe, and the best match explained when asked."""

    probe: str
    gallery: str
    backbone: str
    threshold: float
    candidates: tuple[Candidate, ...]
    photos: int = 0  # photos in the gallery
    explanation: PairExplanation | None = None

    def to_dict(self) -> dict[str, object]:
        return {"probe": self.probe, "gallery": self.gallery, "backbone": self.backbone,
                "threshold": self.threshold,
                "candidates": [c.to_dict() for c in self.candidates]}


def search_gallery(photo: str | Path, gallery: str | Path, top: int = 5,
                   verdict: VerdictOptions | None = None,
                   explain: ExplanationPlan | str | None = None,
                   pipeline: FacePipeline | None = None) -> SearchResult:
    """The ``top`` identities closest to the photo's largest face; with ``explain`` (a plan,
    or method names), the probe against the best match's photo, explained."""
    if top < 1:
        raise InvalidArgument(f"--top must be >= 1, got {top}")
    verdict = (verdict or VerdictOptions()).check()
    g = load_gallery(Path(gallery))
    plan = explain if not isinstance(explain, str) else plan_explanation(
        explain, g.backbone, verdict=verdict)
    if plan is not None and plan.spec.name != g.backbone:
        raise InvalidArgument(f"the gallery was built with {g.backbone}; the explanation asks "
                              f"for {plan.spec.name}")
    pipe = pipeline or FacePipeline(plan.spec if plan is not None else g.backbone)
    calibration = calibration_of(pipe, forward_only=True)
    candidates = tuple(GallerySearch(g, calibration, options=verdict).identities(
        embed_photo(pipe, Path(photo)), top))
    explanation = None
    if plan is not None and candidates:
        explanation = explain_pair(photo, candidates[0].photo, pipeline=pipe, plan=plan)
    return SearchResult(str(photo), str(gallery), g.backbone, calibration.threshold,
                        candidates, len(g), explanation)
