"""Explanation methods by name: one factory the CLI, the web app and the benchmarks share."""

from __future__ import annotations

from dataclasses import dataclass

from facexplain.errors import AssetMissing, InvalidArgument
from facexplain.explain.base import Explainer
from facexplain.explain.gradients import GRADIENT_METHODS, build_gradient_explainer
from facexplain.pipeline import FacePipeline

METHODS: tuple[str, ...] = ("occlusion", *GRADIENT_METHODS, "xcos")


@dataclass(frozen=True)
class ExplainOptions:
    """Settings of the methods (the paper's defaults where it has them)."""

    patch: int = 16
    stride: int = 8
    fill: str = "mean-face"
    ig_steps: int = 32
    attention: str = "L"
    progress: bool = True


def parse_methods(spec: str) -> tuple[str, ...]:
    """'all', one name, or a comma-separated list -> validated method names."""
    if spec == "all":
        return METHODS
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise InvalidArgument(f"unknown method '{','.join(unknown) or spec}'; valid: "
                              f"{', '.join(METHODS)} or all")
    return names


def build_explainer(method: str, pipeline: FacePipeline, options: ExplainOptions) -> Explainer:
    """The explainer ``method`` on the pipeline's backbone and its pair cosine."""
    spec, model = pipeline.spec, pipeline.model
    if method == "occlusion":
        from facexplain.explain.occlusion import PairwiseOcclusion

        if options.patch < 1 or options.stride < 1:
            raise InvalidArgument("--patch and --stride must be positive")
        if options.patch > spec.input_size:
            raise InvalidArgument(f"--patch {options.patch} is larger than the "
                                  f"{spec.input_size}px face crop")
        return PairwiseOcclusion.for_backbone(model, spec.name, options.patch, options.stride,
                                              options.fill, progress=options.progress)
    if method in GRADIENT_METHODS:
        return build_gradient_explainer(method, model, spec.last_spatial_node, fill="zero",
                                        template=spec.template, n_steps=options.ig_steps)
    if method == "xcos":
        from facexplain.explain.xcos import load_xcos

        return load_xcos(spec.name, model=model, attention=options.attention)
    raise InvalidArgument(f"unknown method '{method}'; valid: {', '.join(METHODS)}")


def xcos_available(backbone: str) -> bool:
    from facexplain.explain.xcos import default_checkpoint

    try:
        default_checkpoint(backbone)
    except AssetMissing:
        return False
    return True
