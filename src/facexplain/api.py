"""The library's use cases: ``verify`` and ``explain_pair``. Every front end calls these.

Why: the CLI used to build pipeline, verdict, explainers and report itself, so a notebook, the
web app or a batch runner would have copied it. Now a front end translates its arguments into
``explain_pair(photo_a, photo_b, methods=..., options=...)`` and renders the typed result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from facexplain.backbones.registry import DEFAULT_BACKBONE, get_spec
from facexplain.backbones.runtime import runtime_key
from facexplain.backbones.spec import BackboneSpec
from facexplain.confidence.scope import ScopeProfile, face_traits, out_of_scope
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods.registry import parse_methods
from facexplain.pipeline import FacePipeline
from facexplain.results import MethodResult, PairExplanation
from facexplain.scoring import Calibration, calibration_for, get_calibration
from facexplain.types import FacePair, Verdict

Log = Callable[[str], None]


def calibration_of(pipeline: FacePipeline, forward_only: bool = False) -> Calibration:
    """The calibration of the pipeline's weights. The torch path names its weights by their
    values (an edited model gets no other model's numbers); the forward-only path runs the
    verified runtime file of the registered weights. No record: a user model must calibrate
    first; a built-in with other weights gets its provisional threshold and no confidence."""
    spec = pipeline.spec
    source = None
    if forward_only and pipeline.runtime() is not None:  # no torch: the verified file
        weights = None
        source = runtime_key(spec.name, pipeline.root) if spec.user else None
    else:
        weights = pipeline.scorer.fingerprint()
    cal = calibration_for(spec.name, weights, source=source)
    if cal is not None:
        return cal
    if spec.user:
        return get_calibration(spec.name, weights=weights, source=source)  # a one-line error
    return Calibration.uncalibrated(
        spec.name, spec.threshold, f"not calibrated for these weights of {spec.name}: the "
        "threshold is the backbone's provisional value and no confidence is given")


def _scope(cal: Calibration, pair: FacePair, embeddings: np.ndarray) -> tuple[str, ...]:
    """Why either photo is unlike the calibration photos (empty: both in scope)."""
    if cal.scope is None:
        return ()
    profile = ScopeProfile(**cal.scope)
    notes = []
    for label, face, emb in (("photo A", pair.a, embeddings[0]), ("photo B", pair.b,
                                                                  embeddings[1])):
        det = face.detection
        traits = face_traits(face.array, None if det is None else det.landmarks,
                             None if det is None else det.score, emb)
        notes += [f"{label}: {n}" for n in out_of_scope(traits, profile)]
    return tuple(notes)


def verdict_for_pair(pipeline: FacePipeline, pair: FacePair, path_a: str, path_b: str,
                     forward_only: bool = False, max_error: float | None = None,
                     population: str | None = None) -> Verdict:
    """Score an aligned pair with the pipeline's backbone and its calibrated threshold.

    ``forward_only`` lets the score come from the forward-only runtime (verification alone);
    otherwise it is the torch module's, the very number the explanation maps explain.
    ``max_error`` asks for a selective verdict: "not sure" unless the stored rule of that
    error rate (for ``population``) answers.
    """
    cal = calibration_of(pipeline, forward_only)
    embeddings = (pipeline.embeddings(pair) if forward_only
                  else pipeline.scorer.embed_pair(pair.tensor).numpy())
    similarity = (pipeline.similarity(pair) if forward_only
                  else pipeline.scorer.similarity(pair.tensor))
    confidence = cal.confidence(similarity)
    answered, rule_text = True, ""
    if max_error is not None:
        rule = cal.selective_rule(max_error, population)
        if rule is None or confidence is None:
            answered, rule_text = False, (f"no rule keeps errors at or below {max_error:g} for "
                                          f"{spec_words(cal)}")
        else:
            says_same = similarity >= cal.threshold
            needed = float(rule["min_same" if says_same else "min_different"])
            answered = confidence >= needed
            rule_text = (f"answers a '{'same' if says_same else 'different'}' verdict when its "
                         f"confidence is at least {needed:.6f}: at most "
                         f"{float(rule['target']):g} errors among answered pairs of "
                         f"{rule['population']}, {100 * float(rule['coverage']):.0f}% of "
                         "them answered (held-out figures: docs/BENCHMARKS.md)")
    return Verdict(
        similarity=similarity,
        threshold=cal.threshold,
        same=similarity >= cal.threshold,
        confidence=confidence,
        backbone=pipeline.spec.name,
        path_a=path_a,
        path_b=path_b,
        warnings=pair.a.warnings + pair.b.warnings,
        population=cal.command if cal.provisional else cal.population,
        scope=_scope(cal, pair, embeddings),
        max_error=max_error,
        rule=rule_text,
        answered=answered,
    )


def spec_words(cal: Calibration) -> str:
    return "these weights" if cal.provisional else f"{cal.backbone} on {cal.population}"


def verify(
    path_a: str | Path, path_b: str | Path, backbone: str = DEFAULT_BACKBONE,
    pipeline: FacePipeline | None = None, max_error: float | None = None,
    population: str | None = None,
) -> Verdict:
    """Are the faces in two photos the same person? Detects, aligns, embeds and decides;
    with ``max_error``, answers "not sure" where the stored selective rule would not answer."""
    pipe = pipeline or FacePipeline(backbone)
    pair = pipe.pair(path_a, path_b)
    return verdict_for_pair(pipe, pair, str(path_a), str(path_b), forward_only=True,
                            max_error=max_error, population=population)


def skipped_methods(methods: str | Sequence[str], spec: BackboneSpec) -> tuple[tuple[str, str],
                                                                              ...]:
    """What ``--method all`` leaves out on this backbone, each with why (empty otherwise)."""
    spec_text = methods if isinstance(methods, str) else ",".join(methods)
    if spec_text.strip() != "all":
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


def resolve_methods(methods: str | Sequence[str], options: ExplainOptions,
                    spec: BackboneSpec) -> tuple[MethodInfo, ...]:
    """Method names -> registered methods, each checked against the options and backbone.

    Cheap and model-free: front ends call it first so bad input fails before models load.
    """
    spec_text = methods if isinstance(methods, str) else ",".join(methods)
    infos = parse_methods(spec_text)
    if spec_text.strip() == "all":  # every method this backbone can run, but the slow ones
        infos = tuple(i for i in infos if i.in_all and (i.supports is None or i.supports(spec)))
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
    pipe = pipeline or FacePipeline(spec.name)
    for info in infos:
        if info.prepare is not None:
            info.prepare(spec.name, options.progress)
    explainers = [(info, info.build(pipe.scorer, options)) for info in infos]
    pair = pipe.pair(photo_a, photo_b)
    verdict = verdict_for_pair(pipe, pair, str(photo_a), str(photo_b))
    calibration = calibration_of(pipe)
    results = []
    for info, explainer in explainers:
        if log is not None:
            log(f"explaining with {info.name} ...")
        results.append(MethodResult(info, explainer.explain(pair.tensor)))
    return PairExplanation(verdict, pair, spec, calibration, tuple(results),
                           pipe.scorer.fingerprint(), skipped_methods(methods, spec))
