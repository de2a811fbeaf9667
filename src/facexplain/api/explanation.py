"""The explanation use case: ``plan_explanation`` (cheap, model-free checks) and
``explain_pair`` (verdict + each method's maps). Every front end calls these.

Why a plan: the backbone name, the method list, what ``all`` leaves out and each method's
option checks are resolved once, before any model loads; a front end prints the plan's notes
and hands the same plan to ``explain_pair`` instead of resolving it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facexplain.api.verdict import calibration_of, verdict_for_pair
from facexplain.backbones.registry import DEFAULT_BACKBONE, get_spec
from facexplain.backbones.spec import BackboneSpec
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods.registry import check_options, parse_methods
from facexplain.pipeline import FacePipeline
from facexplain.results import MethodResult, PairExplanation
from facexplain.types import VerdictOptions

Log = Callable[[str], None]
Methods = str | Sequence[str]


def _text(methods: Methods) -> str:
    return methods if isinstance(methods, str) else ",".join(methods)


def skipped_methods(methods: Methods, spec: BackboneSpec) -> tuple[tuple[str, str], ...]:
    """What ``--method all`` leaves out on this backbone, each with why (empty otherwise)."""
    if _text(methods).strip() != "all":
        return ()
    out = []
    for info in parse_methods("all"):
        if info.supports is not None and not info.supports(spec):
            out.append((info.name, f"cannot run on {spec.name} (it needs what this backbone "
                                   "lacks: named feature maps or a trained head layout)"))
        elif not info.in_all:
            out.append((info.name, "slow (a few hundred forward passes or more): name it to "
                                   "run it"))
    return tuple(out)


def resolve_methods(methods: Methods, options: ExplainOptions,
                    spec: BackboneSpec) -> tuple[MethodInfo, ...]:
    """Method names -> registered methods, each checked against the options and backbone."""
    text = _text(methods)
    infos = parse_methods(text)
    if text.strip() == "all":  # every method this backbone can run, but the slow ones
        infos = tuple(i for i in infos if i.in_all and (i.supports is None or i.supports(spec)))
    check_options(infos, options, spec)  # each method's declared options, then its check
    return infos


@dataclass(frozen=True)
class ExplanationPlan:
    """What an explanation will run, resolved once and checked before any model loads."""

    spec: BackboneSpec
    methods: tuple[MethodInfo, ...]
    options: ExplainOptions
    skipped: tuple[tuple[str, str], ...] = ()  # what 'all' leaves out, and why
    verdict: VerdictOptions = VerdictOptions()


def plan_explanation(methods: Methods = "occlusion", backbone: str | BackboneSpec =
                     DEFAULT_BACKBONE, options: ExplainOptions | None = None,
                     verdict: VerdictOptions | None = None) -> ExplanationPlan:
    """Backbone, methods and options checked (one-line errors), no model loaded."""
    spec = backbone if isinstance(backbone, BackboneSpec) else get_spec(backbone)
    options = options or ExplainOptions()
    verdict = (verdict or VerdictOptions()).check()
    return ExplanationPlan(spec, resolve_methods(methods, options, spec), options,
                           skipped_methods(methods, spec), verdict)


def explain_pair(
    photo_a: str | Path,
    photo_b: str | Path,
    methods: Methods = "occlusion",
    backbone: str = DEFAULT_BACKBONE,
    options: ExplainOptions | None = None,
    pipeline: FacePipeline | None = None,
    log: Log | None = None,
    plan: ExplanationPlan | None = None,
    verdict: VerdictOptions | None = None,
) -> PairExplanation:
    """Verify two photos and explain the verdict with each of ``methods`` ('all', a name, a
    comma list or a sequence of names). Pass ``pipeline`` to reuse loaded models across calls,
    ``plan`` (from ``plan_explanation``) to skip resolving the methods again. Validation of
    methods and options happens before any model is loaded.
    """
    if plan is None:
        plan = plan_explanation(methods, pipeline.spec if pipeline is not None else backbone,
                                options, verdict)
    pipe = pipeline or FacePipeline(plan.spec)
    for info in plan.methods:
        if info.prepare is not None:
            info.prepare(plan.spec.name, plan.options.progress)
    explainers = [(info, info.build(pipe.scorer, plan.options)) for info in plan.methods]
    pair = pipe.pair(photo_a, photo_b)
    result_verdict = verdict_for_pair(pipe, pair, str(photo_a), str(photo_b), plan.verdict)
    results = []
    for info, explainer in explainers:
        if log is not None:
            log(f"explaining with {info.name} ...")
        results.append(MethodResult(info, explainer.explain(pair.tensor)))
    return PairExplanation(result_verdict, pair, plan.spec, calibration_of(pipe),
                           tuple(results), pipe.scorer.fingerprint(), plan.skipped)
