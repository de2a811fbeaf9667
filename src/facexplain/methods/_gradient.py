"""What the Captum-backed gradient methods share: their maps and how they are built."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facexplain.method_info import (
    ExplainOptions,
    MapSpec,
    MethodInfo,
    MethodOption,
    NoteHook,
    RankedMap,
    delta_map,
)
from facexplain.methods._options import FILL
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer
    from facexplain.explain.scorer import PairScorer

GRADIENT_DESCRIPTION = ("Gradient of the pair's cosine similarity with respect to each face's "
                        "pixels (Captum).")

SIGNED_MAPS = (
    delta_map("first-order estimate of the similarity change if the pixel were removed"),
    MapSpec("difference", "pixels whose change would raise the similarity",
            reading="bright where a small change toward the reference would make the photos "
            "look more alike: where the model sees them disagree. Read where bright spots "
            "gather, not single dots; it is a first-order estimate and can miss what hiding a "
            "whole region would do (the occlusion maps measure that)."),
    MapSpec("similarity", "pixels whose change would lower the similarity",
            reading="bright where a small change would make the photos look less alike: the "
            "details the match leans on. Same caveats as the difference map."),
)
SENSITIVITY = ("bright where the score is most sensitive: a small change of those pixels would "
               "change the similarity most, toward alike or toward different. It shows where "
               "the score would react, not whether the faces match or differ there.")


def magnitude_map(reading: str = SENSITIVITY) -> MapSpec:
    """The unsigned picture (not drawn in the report; the human study shows it)."""
    return MapSpec("magnitude", "unsigned attribution (the classic picture)", show=False,
                   reading=reading)


MAGNITUDE = magnitude_map()

IG_STEPS: MethodOption[int | None] = MethodOption(
    "ig_steps", int, None, "Integrated-gradients steps (default: adaptive, doubled from 32 "
    "until the completeness error is under 5% of the similarity change, at most 512).",
    minimum=1)


def gradient_builder(method: str) -> Callable[[PairScorer, ExplainOptions], Explainer]:
    """A registry builder for one of ``explain.gradients.GRADIENT_METHODS``."""

    def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
        from facexplain.explain.gradients import build_gradient_explainer

        spec = scorer.require_spec()
        fill = options.gradient_fill
        if fill is None:  # IG's baseline follows --fill; the others compare with black
            fill = options.get(FILL) if method == "ig" else "zero"
        node = spec.last_spatial_node if method == "gradcam" else ""  # pixel methods: none
        return build_gradient_explainer(method, scorer.model, node,
                                        fill=fill, template=spec.template,
                                        n_steps=options.get(IG_STEPS), score_fn=scorer)

    return build


def register_pixel_method(name: str, title: str, description: str = GRADIENT_DESCRIPTION,
                          note: NoteHook | None = None,
                          magnitude_reading: str = SENSITIVITY,
                          options: tuple[MethodOption[Any], ...] = ()) -> MethodInfo:
    """Register one per-pixel Captum method (signed maps plus the unsigned magnitude, whose
    reading says what that method's picture means)."""
    return register_method(MethodInfo(
        name=name, title=title, family="black-box", description=description,
        maps=(*SIGNED_MAPS, magnitude_map(magnitude_reading)), build=gradient_builder(name),
        rankings=(RankedMap("delta"), RankedMap("magnitude", "magnitude", suffix="abs")),
        note=note, options=options,
    ))
