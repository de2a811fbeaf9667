"""Typed, frozen result objects passed between the layers.

Aligned faces are stored as numpy arrays and shown to torch code as tensors sharing the same
memory, so verification (numpy and onnxruntime only) never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# What every explanation method explains (Captum's ``forward_func`` idea): (N, 3, H, W) faces A,
# (N, 3, H, W) faces B  ->  (N,) similarity of each pair.
PairScore = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class Detection:
    """One detected face in original-image pixel coordinates.

    ``box`` is (x1, y1, x2, y2); ``landmarks`` is a (5, 2) array ordered left eye, right eye,
    nose, left mouth corner, right mouth corner (left/right as seen in the image).
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@dataclass(frozen=True)
class LocatedFace:
    """The chosen face of one photo: its detection, how many were found, whether guessed."""

    detection: Detection
    n_faces: int
    fallback: bool


@dataclass(frozen=True)
class AlignedFace:
    """A face warped to a backbone's template: float RGB pixels in [0, 255], shape (3, H, W)."""

    array: np.ndarray  # float32 (3, H, W)
    source: str
    detection: Detection | None
    n_faces: int
    warnings: tuple[str, ...] = ()

    @property
    def pixels(self) -> torch.Tensor:
        """The face as a (3, H, W) float tensor (shares the array's memory)."""
        import torch

        return torch.from_numpy(self.array)


@dataclass(frozen=True)
class FacePair:
    """Two aligned faces for one backbone, stacked as a (2, 3, H, W) tensor."""

    a: AlignedFace
    b: AlignedFace
    backbone: str

    @property
    def tensor(self) -> torch.Tensor:
        import torch

        return torch.stack([self.a.pixels, self.b.pixels])

    @property
    def array(self) -> np.ndarray:
        """(2, 3, H, W) float32, for forward-only code."""
        return np.stack([self.a.array, self.b.array])


# The populations the shipped "not sure" rules were calibrated on (``benchmark calibration``).
POPULATIONS = ("lfw", "lookalike")


@dataclass(frozen=True)
class VerdictOptions:
    """What a person may ask of a verdict, the same in every front end (CLI, web, API, batch).

    Why one object: each front end used to pass (or forget) these one by one, so a field added
    here (a prior, a quality gate) reaches every front end through the one use case
    (``api.verdict_for_pair``). ``max_error``: answer "not sure" unless the stored selective
    rule at or below this error rate answers; ``population``: which population's rule.
    """

    max_error: float | None = None
    population: str | None = None
    prior_odds: float | None = None  # same : different before the photos; gives P(same)

    def check(self) -> VerdictOptions:
        """One-line errors for values no rule can take, before any model loads."""
        from facexplain.errors import InvalidArgument

        if self.max_error is not None and not 0.0001 <= self.max_error <= 0.5:
            raise InvalidArgument(f"--max-error must be between 0.0001 and 0.5, got "
                                  f"{self.max_error:g}")
        if self.population is not None and self.population not in POPULATIONS:
            raise InvalidArgument(f"--population must be one of {', '.join(POPULATIONS)}, got "
                                  f"'{self.population}'")
        if self.prior_odds is not None and not (
                math.isfinite(self.prior_odds) and 1e-12 <= self.prior_odds <= 1e12):
            raise InvalidArgument(f"the prior odds must be between 1e-12 and 1e12 (same : "
                                  f"different), got {self.prior_odds:g}")
        return self


@dataclass(frozen=True)
class Verdict:
    """The answer to 'same person?': cosine similarity against a calibrated threshold.

    ``confidence`` is P(verdict) from the backbone's calibration (None: not calibrated for
    these weights); ``population`` says what it was calibrated on, ``scope`` why either photo
    is unlike those photos. With a selective rule (``max_error``), ``answer`` is "not sure"
    when the confidence is below what keeps errors among answered pairs at that rate.
    """

    similarity: float
    threshold: float
    same: bool
    confidence: float | None
    backbone: str
    path_a: str
    path_b: str
    warnings: tuple[str, ...] = field(default_factory=tuple)
    population: str = ""
    scope: tuple[str, ...] = ()
    max_error: float | None = None
    rule: str = ""
    answered: bool = True
    log10_lr: float | None = None  # strength of evidence, bounded (None: no LR fitted)
    lr_population: str = ""  # the pairs the LR's fit came from
    verbal: str = ""  # the ENFSI verbal scale of the LR
    prior_odds: float | None = None  # the user's, same : different
    p_same: float | None = None  # only for a prior the user stated
    quality: dict[str, dict[str, object]] | None = None  # "a", "b": score, components, failing

    @property
    def answer(self) -> str:
        """'same', 'different' or (selective verdicts only) 'not sure'."""
        if not self.answered:
            return "not sure"
        return "same" if self.same else "different"

    def to_dict(self) -> dict[str, object]:
        """The verdict as every front end prints it (``verify --json``, ``/api/v1``, batch)."""
        return {
            "similarity": self.similarity,
            "threshold": self.threshold,
            "same": self.same,
            "answer": self.answer,
            "confidence": self.confidence,
            "backbone": self.backbone,
            "path_a": self.path_a,
            "path_b": self.path_b,
            "warnings": list(self.warnings),
            "calibration_population": self.population,
            "out_of_scope": list(self.scope),
            "max_error": self.max_error,
            "rule": self.rule,
            "log10_lr": self.log10_lr,
            "lr_population": self.lr_population,
            "verbal": self.verbal,
            "prior_odds": self.prior_odds,
            "p_same": self.p_same,
            "quality": self.quality,
        }


# What explanation methods return, kept here (a leaf) so the method descriptions
# (``method_info``), the results (``results``) and the report can name them without importing
# the algorithms (``explain``).


@dataclass(frozen=True, kw_only=True)
class MethodDetails:
    """Typed settings and diagnostics of one explanation (each method subclasses it).

    ``note`` is a sentence for the reader (a caveat the method found), ``seconds`` wall time.
    """

    seconds: float | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain values for JSON (tensors become nested lists)."""
        import torch  # only explanations, which have torch loaded, are turned into JSON

        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, torch.Tensor) else value
        return out


COMPONENTS = ("forehead", "eyebrows", "eyes", "nose", "cheeks", "mouth", "jaw")
FINDINGS = ("differs", "consistent", "not assessable")


@dataclass(frozen=True)
class ComponentFinding:
    """One facial component of a pair, in the words facial examiners compare faces in.

    ``score``: how much hiding or swapping the component moves the similarity (None when not
    assessable); ``theta``: the component's own normaliser Θ_c (a high quantile of the score
    over genuine pairs of the calibration folds, per backbone and population); ``finding`` is
    "differs" above Θ_c, "consistent" below, "not assessable" when the component is hidden,
    out of the crop or its landmarks are unreliable (``reason`` says which, in plain words).
    """

    component: str
    score: float | None
    theta: float | None
    finding: str
    rank: int | None = None  # 1 = the component that drives the verdict most
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"component": self.component, "score": self.score, "theta": self.theta,
                "finding": self.finding, "rank": self.rank, "reason": self.reason}


@dataclass(frozen=True)
class ExplanationMaps:
    """What one method says about one pair, in aligned-crop pixel coordinates.

    ``maps`` holds named tensors of shape (2, H, W): index 0 is face A, index 1 face B (for
    pairwise occlusion both rows are the same map, since the same patch is hidden in both).
    ``score`` is the pair score being explained; ``meta`` the method's typed details.
    """

    method: str
    maps: dict[str, torch.Tensor]
    score: float
    meta: MethodDetails = field(default_factory=MethodDetails)


@dataclass(frozen=True)
class Figure:
    """A picture of the report: file name (relative to the report), caption, how to read it."""

    src: str
    caption: str
    reading: str = ""  # how to read the picture, in plain words
