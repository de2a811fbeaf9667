"""Integrated gradients (Sundararajan et al.) from a reference image to the pair."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.methods._gradient import IG_STEPS, register_pixel_method
from facexplain.methods._options import FILL

if TYPE_CHECKING:
    from facexplain.explain.base import ExplanationMaps


def completeness(result: ExplanationMaps) -> str:
    """How well the attributions add up to the similarity change (IG's own check)."""
    from facexplain.explain.gradients import GradientDetails

    d = result.meta
    if not isinstance(d, GradientDetails) or d.completeness_error is None:
        return ""
    return (f" Reference: {d.fill}. Completeness: the similarity changes by "
            f"{d.score_change:+.4f} from the reference to the pair; the attributions miss it by "
            f"{100 * d.completeness_error:.1f}% ({d.n_steps} steps).")


INFO = register_pixel_method(
    "ig", "Integrated gradients",
    "Path integral of the pair similarity's gradient from a reference image to "
    "each face (Captum); the attributions add up to the similarity change.",
    note=completeness,
    magnitude_reading="bright where the pixels moved the similarity most on the way from a "
    "blank reference image to these photos: what the score was built from, whether it made "
    "the faces look more or less alike.",
    options=(FILL, IG_STEPS),
)
