"""What the newer face-verification methods share in the registry: the fill of the methods
whose papers hide pixels with black, the decision threshold xSSAB and FGGB split the
similarity at, and the notes that say how much sampling a map took (their options are
declared in ``methods._options``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions
from facexplain.methods._options import THRESHOLD

if TYPE_CHECKING:
    import torch

    from facexplain.explain.base import ExplanationMaps
    from facexplain.explain.scorer import PairScorer

SLOW = " Not in --method all (slow on a CPU): name it to run it."


def black_fill(options: ExplainOptions) -> str | torch.Tensor:
    """RISE, CorrRISE and x-face hide pixels with black, as their papers; the faithfulness
    benchmark's shared fill (``gradient_fill``) replaces it so every method removes alike."""
    return options.gradient_fill if options.gradient_fill is not None else "zero"


def decision_threshold(scorer: PairScorer, options: ExplainOptions) -> tuple[float, str]:
    """The threshold given in the options, else the calibrated one of these very weights,
    else 0 (and where it came from, in words)."""
    threshold = options.get(THRESHOLD)
    if threshold is not None:
        return float(threshold), "given"
    if scorer.spec is not None:
        from facexplain.scoring import calibration_for

        cal = calibration_for(scorer.spec.name, scorer.fingerprint())
        if cal is not None and not cal.provisional:
            return float(cal.threshold), "calibrated for these weights"
    return 0.0, "none calibrated for these weights, so 0"


def sampling_note(result: ExplanationMaps) -> str:
    """How many samples each face took and whether its map had settled."""
    from facexplain.explain.sampling import SamplingDetails

    d = result.meta
    assert isinstance(d, SamplingDetails)
    text = (f" {d.samples_a} samples for face A and {d.samples_b} for face B ({d.n_forward} "
            f"pair scores, seed {d.seed})")
    if d.converged is None:
        return text + "."
    if d.converged:
        return text + (f"; each map correlates at >= {d.target} with its map from half the "
                       "samples.")
    shown = ", ".join(f"{r:.3f}" if r is not None else "n/a"
                      for r in (d.agreement_a, d.agreement_b))
    return text + (f"; stopped at the cap of {d.max_samples} before every map settled "
                   f"(correlation with the half-sample map: {shown}): read it with caution.")


def threshold_note(result: ExplanationMaps) -> str:
    d = result.meta
    threshold = getattr(d, "threshold", None)
    source = getattr(d, "threshold_source", "")
    return f" Threshold {threshold:.4f} ({source})." if threshold is not None else ""
