"""What the newer face-verification methods share in the registry: their option checks, the
fill of the methods whose papers hide pixels with black, the decision threshold xSSAB and FGGB
split the similarity at, and the notes that say how much sampling a map took."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from facexplain.errors import InvalidArgument
from facexplain.method_info import ExplainOptions

if TYPE_CHECKING:
    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.base import ExplanationMaps
    from facexplain.explain.scorer import PairScorer


def check_threshold(options: ExplainOptions, spec: BackboneSpec) -> None:
    del spec
    if options.threshold is not None and not math.isfinite(options.threshold):
        raise InvalidArgument(f"the threshold must be a finite number, got {options.threshold}")


def decision_threshold(scorer: PairScorer, options: ExplainOptions) -> tuple[float, str]:
    """The threshold given in the options, else the calibrated one of these very weights,
    else 0 (and where it came from, in words)."""
    if options.threshold is not None:
        return float(options.threshold), "given"
    if scorer.spec is not None:
        from facexplain.scoring import calibration_for

        cal = calibration_for(scorer.spec.name, scorer.fingerprint())
        if cal is not None and not cal.provisional:
            return float(cal.threshold), "calibrated for these weights"
    return 0.0, "none calibrated for these weights, so 0"


def threshold_note(result: ExplanationMaps) -> str:
    d = result.meta
    threshold = getattr(d, "threshold", None)
    source = getattr(d, "threshold_source", "")
    return f" Threshold {threshold:.4f} ({source})." if threshold is not None else ""
