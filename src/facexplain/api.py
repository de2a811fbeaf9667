"""The library's use cases: ``verify`` and ``explain_pair``. Every front end calls these.

Why: the CLI used to build pipeline, verdict, explainers and report itself, so a notebook, the
web app or a batch runner would have copied it. Now a front end translates its arguments into
``explain_pair(photo_a, photo_b, methods=..., options=...)`` and renders the typed result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from facexplain.backbones.registry import DEFAULT_BACKBONE, get_spec
from facexplain.backbones.spec import BackboneSpec
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods.registry import parse_methods
from facexplain.pipeline import FacePipeline
from facexplain.results import MethodResult, PairExplanation
from facexplain.scoring import get_calibration
from facexplain.types import FacePair, Verdict

Log = Callable[[str], None]


def verdict_for_pair(pipeline: FacePipeline, pair: FacePair, path_a: str, path_b: str,
                     forward_only: bool = False) -> Verdict:
    """Score an aligned pair with the pipeline's backbone and its calibrated threshold.

    ``forward_only`` lets the score come from the forward-only runtime (verification alone);
    otherwise it is the torch module's, the very number the explanation maps explain.
    """
    cal = get_calibration(pipeline.spec.name)
    similarity = (pipeline.similarity(pair) if forward_only
                  else pipeline.scorer.similarity(pair.tensor))
    return Verdict(
        similarity=similarity,
        threshold=cal.threshold,
        same=similarity >= cal.threshold,
        confidence=cal.confidence(similarity),
        backbone=pipeline.spec.name,
        path_a=path_a,
        path_b=path_b,
        warnings=pair.a.warnings + pair.b.warnings,
    )


def verify(
    path_a: str | Path, path_b: str | Path, backbone: str = DEFAULT_BACKBONE,
    pipeline: FacePipeline | None = None,
) -> Verdict:
    """Are the faces in two photos the same person? Detects, aligns, embeds and decides."""
    pipe = pipeline or FacePipeline(backbone)
    pair = pipe.pair(path_a, path_b)
    return verdict_for_pair(pipe, pair, str(path_a), str(path_b), forward_only=True)


def resolve_methods(methods: str | Sequence[str], options: ExplainOptions,
                    spec: BackboneSpec) -> tuple[MethodInfo, ...]:
    """Method names -> registered methods, each checked against the options and backbone.

    Cheap and model-free: front ends call it first so bad input fails before models load.
    """
    spec_text = methods if isinstance(methods, str) else ",".join(methods)
    infos = parse_methods(spec_text)
    if spec_text.strip() == "all":  # every method this backbone can run; named ones must run
        infos = tuple(i for i in infos if i.supports is None or i.supports(spec))
    for info in infos:
        info.check(options, spec)
    return infos


def explain_pair(
    photo_a: str | Path,
    photo_b: str | Path,
    methods: str | Sequence[str] = "occlusion",
    backbone: str = DEFAULT_BACKBONE,
    options: ExplainOptions | None = None,
    pipeline: FacePipeline | None = None,
    log: Log | None = None,
) -> PairExplanation:
    """Verify two photos and explain the verdict with each of ``methods`` ('all', a name, a
    comma list or a sequence of names). Pass ``pipeline`` to reuse loaded models across calls.
    Validation of methods and options happens before any model is loaded.
    """
    options = options or ExplainOptions()
    spec = pipeline.spec if pipeline is not None else get_spec(backbone)
    infos = resolve_methods(methods, options, spec)
    calibration = get_calibration(spec.name)
    pipe = pipeline or FacePipeline(spec.name)
    for info in infos:
        if info.prepare is not None:
            info.prepare(spec.name, options.progress)
    explainers = [(info, info.build(pipe.scorer, options)) for info in infos]
    pair = pipe.pair(photo_a, photo_b)
    verdict = verdict_for_pair(pipe, pair, str(photo_a), str(photo_b))
    results = []
    for info, explainer in explainers:
        if log is not None:
            log(f"explaining with {info.name} ...")
        results.append(MethodResult(info, explainer.explain(pair.tensor)))
    return PairExplanation(verdict, pair, spec, calibration, tuple(results))
