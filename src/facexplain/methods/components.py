"""Component comparison: a finding per facial component (forehead ... jaw) against its Θ_c."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, MethodOption
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer

VARIANT: MethodOption[str] = MethodOption(
    "component_variant", str, "hide+swap", "How the component comparison scores a component: "
    "hide it in both faces (hide), swap it between the faces (swap), or the mean of both "
    "(hide+swap, the default: best on planted pairs of LFW folds 1-5); Θ_c is stored per "
    "variant.", choices=("hide", "swap", "hide+swap"))
POPULATION: MethodOption[str] = MethodOption(
    "component_population", str, "lfw", "Population whose genuine pairs set each component's "
    "Θ_c (lfw; others where `benchmark component-theta` stored them).")


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.align.landmarks68 import load_landmarks68
    from facexplain.explain.component_theta import get_component_theta
    from facexplain.explain.components import ComponentComparison, landmarks_of, weights_key

    variant = options.get(VARIANT)
    spec = scorer.require_spec()
    theta = get_component_theta(spec.name, weights_key(scorer), variant,
                                 options.get(POPULATION))
    return ComponentComparison(scorer, landmarks_of(load_landmarks68()), theta, variant,
                               template=spec.alignment)


def note(result: ExplanationMaps) -> str:
    """The findings in one sentence, and what Θ_c was calibrated on."""
    from facexplain.explain.components import ComponentDetails

    d = result.meta
    assert isinstance(d, ComponentDetails)
    differs = [f.component for f in d.components if f.finding == "differs"]
    hidden = [f.component for f in d.components if f.finding == "not assessable"
              and f.score is None]
    text = (f" Differs: {', '.join(differs)}." if differs else
            " No component differs more than it does between two photos of one person.")
    if hidden:
        text += f" Not assessable: {', '.join(hidden)}."
    if d.population is None:
        text += (" No Θ_c is stored for these weights: scores are ranked but not judged "
                 "(`facexplain benchmark component-theta --write`).")
    else:
        text += (f" Θ_c: the 0.99 quantile of each component's score over genuine pairs of "
                 f"the '{d.population}' population (LFW calibration folds 1-5); "
                 f"{d.n_forward} pairs evaluated ({d.variant}).")
    return text


INFO = register_method(MethodInfo(
    name="components",
    title="Component comparison (forehead, eyebrows, eyes, nose, cheeks, mouth, jaw)",
    family="black-box",
    description="Each facial component is hidden in both faces (inpainted from the skin "
    "around it) and swapped between them, and the similarity recomputed: a component whose "
    "hiding or swapping makes the faces look more alike, by more than between two photos of "
    "one person (Θ_c), differs. Hidden, cropped or badly located components are not "
    "assessable.",
    maps=(MapSpec("delta", "each component's pixels filled with its score Δ_c (the gain of "
                  "the similarity when it is hidden or swapped)", signed=True, vrange=None,
                  cmap="RdBu_r", show=False),),
    build=build,
    options=(VARIANT, POPULATION),
    note=note,
))
