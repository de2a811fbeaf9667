"""x-face occlusion (Knoche et al., WACVW 2023): occlusion at three patch sizes, both faces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.errors import InvalidArgument
from facexplain.method_info import (
    ExplainOptions,
    MapSpec,
    MethodInfo,
    MethodOption,
    RankedMap,
    delta_map,
)
from facexplain.methods._newer import SLOW, black_fill
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer


XFACE_PATCHES: MethodOption[tuple[int, ...] | None] = MethodOption(
    "xface_patches", tuple, None, "Patch sizes of x-face occlusion in px, comma-separated "
    "(default: the paper's 7,14,28 on a 112 px crop, scaled to the backbone's crop).")
XFACE_STRIDE: MethodOption[int | None] = MethodOption(
    "xface_stride", int, None, "Stride of x-face occlusion in px (default: the paper's 5 on a "
    "112 px crop, scaled).", minimum=1)


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.xface import XFaceOcclusion

    return XFaceOcclusion(scorer, options.get(XFACE_PATCHES), options.get(XFACE_STRIDE),
                          fill=black_fill(options), template=scorer.require_spec().template,
                          batch_size=options.batch_size, incremental=options.incremental)


def check(options: ExplainOptions, spec: BackboneSpec) -> None:
    """Patch sizes and stride against the crop, before any model loads."""
    from facexplain.explain.xface import PAPER_PATCHES, PAPER_STRIDE, scaled

    size = spec.input_size
    patches = options.get(XFACE_PATCHES) or tuple(scaled(k, size) for k in PAPER_PATCHES)
    stride = options.get(XFACE_STRIDE) or scaled(PAPER_STRIDE, size)
    if not patches or min(patches) < 1 or stride < 1:
        raise InvalidArgument(f"x-face patches and stride must be positive, got {patches}, "
                              f"{stride}")
    if max(patches) > size:
        raise InvalidArgument(f"x-face patch {max(patches)} is larger than the {size}px crop")
    if stride > min(patches):
        raise InvalidArgument(f"x-face stride {stride} is larger than patch {min(patches)}: "
                              "pixels between patches would never be hidden")


def note(result: ExplanationMaps) -> str:
    from facexplain.explain.xface import XFaceDetails

    d = result.meta
    assert isinstance(d, XFaceDetails)
    return (f" Patches of {d.patches} px, stride {d.stride} px, filled with {d.fill}: "
            f"{d.n_windows} positions per face, {d.n_forward} face embeddings.{SLOW}")


INFO = register_method(MethodInfo(
    name="xface-occlusion",
    title="x-face occlusion (multi-size)",
    family="black-box",
    description="Patches of three sizes (7, 14, 28 px on a 112 px crop, stride 5) are hidden "
    "in each photo; each occluded photo A is compared with every occluded photo B (the "
    "paper's default pairing) and vice versa, the changes averaged per pixel and over sizes.",
    maps=(
        delta_map("similarity change when the region is hidden (all-pairs pairing)"),
        MapSpec("difference", "difference map per face (hiding it raises the similarity)",
                reading="bright in a photo where hiding that region makes it closer to the "
                "other photo (under any occlusion of it): the photos differ there."),
        MapSpec("similarity", "similarity map per face (hiding it lowers the similarity)",
                reading="bright where hiding that region of that photo makes the pair less "
                "alike: what the match leans on."),
        MapSpec("delta_clean", "Δ, occluded photo against the clean other (pairing 2)",
                signed=True, vrange=None, cmap="RdBu_r", show=False),
        MapSpec("delta_same", "Δ, both photos occluded at the same place (pairing 3)",
                signed=True, vrange=None, cmap="RdBu_r", show=False),
    ),
    build=build,
    check=check,
    options=(XFACE_PATCHES, XFACE_STRIDE),
    rankings=(RankedMap("delta"), RankedMap("delta_clean", suffix="clean"),
              RankedMap("delta_same", suffix="same")),
    note=note,
    in_all=False,
))
