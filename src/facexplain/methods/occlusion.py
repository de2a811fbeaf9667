"""Pairwise occlusion (deep difference analysis): the paper's method, incremental on backbones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain.errors import InvalidArgument
from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, MethodOption, delta_map
from facexplain.methods._options import FILL, PATCH, STRIDE
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer
    from facexplain.results import Figure


def check(options: ExplainOptions, spec: BackboneSpec) -> None:
    """Patch and stride against the backbone's crop, before any model loads."""
    size = spec.input_size
    k, s = options.get(PATCH), options.get(STRIDE)
    if k < 1 or s < 1:
        raise InvalidArgument(f"--patch and --stride must be positive (got {k} and {s})")
    if k > size:
        raise InvalidArgument(f"--patch {k} is larger than the {size}px face crop of {spec.name}")
    if s > k:
        raise InvalidArgument(f"--stride {s} is larger than --patch {k}: pixels between "
                              "patches would never be hidden")


APPROX: MethodOption[bool] = MethodOption(
    "approx", bool, False, "Approximate pairwise occlusion (much faster at small strides; its "
    "measured error is printed in the report).")


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.approx_occlusion import ApproxSettings
    from facexplain.explain.occlusion import PairwiseOcclusion

    backbone = scorer.require_spec().name
    return PairwiseOcclusion.for_backbone(scorer, backbone, options.get(PATCH),
                                          options.get(STRIDE), options.get(FILL),
                                          options.batch_size, options.progress,
                                          options.incremental,
                                          ApproxSettings() if options.get(APPROX) else None)


def note(result: ExplanationMaps) -> str:
    """Max Δ against Θ in words, and how the map was computed."""
    from facexplain.explain.occlusion import OcclusionDetails

    d = result.meta
    assert isinstance(d, OcclusionDetails)
    if d.theta is None:
        text = (f" No Θ: none is stored for these weights at k={d.k}, s={d.s}, so the raw map "
                "is drawn stretched to its own maximum and even a small difference (noise) "
                f"looks bright; read its values (max Δ = {d.max_delta:.4f}), not its colours "
                "(calibrate Θ with `facexplain benchmark occlusion-stats --write-theta`).")
    else:
        state = "lit: above" if d.max_delta >= d.theta else "dark: below"
        text = (f" Max Δ = {d.max_delta:.4f}, Θ = {d.theta} ({state} the level most genuine "
                "LFW pairs stay under; Θ was calibrated on LFW pairs, so a pair of photos "
                "unlike LFW's can light up without differing).")
    if d.approx is not None:
        text += (f" APPROXIMATE map (--approx: {d.approx}): {d.n_windows} patches; the "
                 f"largest error of the sampled patches was {d.approx_error or 0.0:.1%} of the "
                 "map's largest |Δ|. Run without --approx for the exact map.")
    elif d.incremental:
        text += (f" {d.n_windows} patches, each evaluated incrementally (only the part of the "
                 "network the patch reaches is recomputed; same map as a full re-evaluation "
                 "up to float rounding).")
    return text


def figures(result: ExplanationMaps, faces: torch.Tensor, out: Path) -> list[Figure]:
    """The Θ-normalised map on a fixed 0..1 scale, titled with the setting."""
    from facexplain.explain.occlusion import OcclusionDetails
    from facexplain.report.overlay import save_pair_overlay
    from facexplain.results import Figure

    d = result.meta
    assert isinstance(d, OcclusionDetails)
    if "difference_normalized" not in result.maps:
        return []
    p = save_pair_overlay(faces, result.maps["difference_normalized"],
                          out / "occlusion_difference_normalized.png",
                          f"difference, Θ-normalised (Θ={d.theta}; k={d.k}, s={d.s})",
                          vmin=0.0, vmax=1.0)
    return [Figure(p.name, "Θ-normalised difference map: bright where the faces differ more "
                   "than genuine pairs ever do; a genuine pair stays dark.")]


INFO = register_method(MethodInfo(
    name="occlusion",
    title="Pairwise occlusion (deep difference analysis)",
    family="black-box",
    description="The same patch is hidden in both faces and the similarity recomputed. "
    "Difference map: where hiding a region makes the faces look more alike, i.e. where they "
    "differ. Similarity map: where hiding it makes them look less alike, i.e. where they match.",
    maps=(
        delta_map("signed change of the similarity when the region is hidden"),
        MapSpec("difference", "raw difference map Δ>0 (where the faces differ)",
                reading="bright where hiding that region in both photos makes them look more "
                "alike: the model sees the faces differ there. Compare the brightest value "
                "with Θ (the level most genuine LFW pairs stay under): below "
                "Θ, nothing differs more than it does between two photos of one person. One "
                "map for both photos: it cannot say which photo carries the difference."),
        MapSpec("similarity", "raw similarity map −Δ>0 (where the faces match)",
                reading="bright where hiding that region makes the photos look less alike: "
                "the match leans on it. A dark, flat map on a same-person pair means no single "
                "region carries the match."),
        MapSpec("difference_normalized", "Θ-normalised difference map clip(Δ/Θ, 0, 1)",
                vrange=(0.0, 1.0), show=False,
                reading="bright where the two faces differ: hiding that region in both photos "
                "makes them look more alike, by more than it does for two photos of one "
                "person. Dark everywhere means nothing differs more than that. One picture for "
                "both photos: it does not say which photo carries the difference."),
    ),
    build=build,
    check=check,
    options=(PATCH, STRIDE, FILL, APPROX),
    pairwise=True,
    figures=figures,
    note=note,
))
