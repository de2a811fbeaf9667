"""The verdict use case: one function decides "same person?" for every front end.

Why one place: the batch runner used to compute its own verdict from the threshold (no scope
check, no "not sure" rule) while the CLI and the web app used this one. Now ``verify`` (two
photos), ``verdict_for_pair`` (an aligned pair) and ``embed_face`` (a worker that embeds each
photo once) are the only way to a ``Verdict``; every field added to it reaches the CLI, the web
app, ``/api/v1``, batch and search alike.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.backbones.runtime import runtime_key
from facexplain.confidence.likelihood import posterior_same, verbal
from facexplain.confidence.scope import ScopeProfile, face_traits, out_of_scope
from facexplain.pipeline import FacePipeline
from facexplain.quality.profile import PhotoQuality
from facexplain.scoring import Calibration, Decision, calibration_for, cosine_rows, get_calibration
from facexplain.types import AlignedFace, FacePair, Verdict, VerdictOptions


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


def embed_face(pipeline: FacePipeline, face: AlignedFace) -> np.ndarray:
    """One aligned face's embedding, forward-only (the runtime where there is one): what a
    verdict compares. A batch worker keeps these per photo; ``verify`` makes the same call."""
    runtime = pipeline.runtime()
    if runtime is None:
        return pipeline.embed(face.pixels.unsqueeze(0))[0].numpy()
    return np.asarray(runtime(face.array[None]))[0]


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
                     options: VerdictOptions | None = None, forward_only: bool = False,
                     embeddings: np.ndarray | None = None) -> Verdict:
    """Score an aligned pair with the pipeline's backbone and its calibrated threshold.

    ``forward_only`` lets the score come from the forward-only runtime, each face embedded on
    its own (``embed_face``; verification alone); ``embeddings`` (2, D) passes those a caller
    already holds. Otherwise the score is the torch module's, the very number the explanation
    maps explain. ``options`` ask for a selective verdict and more (``VerdictOptions``).
    """
    options = options or VerdictOptions()
    cal = calibration_of(pipeline, forward_only or embeddings is not None)
    if embeddings is None and forward_only:
        embeddings = np.stack([embed_face(pipeline, pair.a), embed_face(pipeline, pair.b)])
    if embeddings is not None:
        similarity = float(cosine_rows(embeddings[0], embeddings[1]))
    else:
        embeddings = pipeline.scorer.embed_pair(pair.tensor).numpy()
        similarity = pipeline.scorer.similarity(pair.tensor)
    decision = cal.decide(similarity, options)
    qualities = _quality(pipeline, cal, pair, embeddings)
    unfit = _unfit_reasons(qualities)
    if unfit and options.max_error is not None and decision.answered:
        decision = replace(decision, answered=False, rule=(
            f"not sure: {unfit}; the rule's error bound holds for photos within the "
            f"calibration photos' quality range"))
    if unfit and decision.evidence is not None:
        decision = replace(decision, evidence=_evidence_for_unfit(cal, similarity, decision))
    return Verdict(
        similarity=similarity,
        threshold=cal.threshold,
        same=decision.same,
        confidence=decision.confidence,
        backbone=pipeline.spec.name,
        path_a=path_a,
        path_b=path_b,
        warnings=pair.a.warnings + pair.b.warnings + ((pipeline.spec.warning,)
                                                      if pipeline.spec.warning else ()),
        population=cal.command if cal.provisional else cal.population,
        scope=_scope(cal, pair, embeddings),
        max_error=options.max_error,
        rule=decision.rule,
        answered=decision.answered,
        **_evidence(decision, options),
        quality=None if qualities is None else {
            "a": qualities[0].to_dict(), "b": qualities[1].to_dict()},
    )


def _quality(pipeline: FacePipeline, cal: Calibration, pair: FacePair, embeddings: np.ndarray
             ) -> tuple[PhotoQuality, PhotoQuality] | None:
    """Both photos' fitness for comparison against the calibration photos' profile (None:
    no profile stored for these weights)."""
    if cal.quality is None:
        return None
    from facexplain.quality.assess import assess_faces
    from facexplain.quality.profile import QualityProfile

    a, b = assess_faces([pair.a, pair.b], pipeline.spec.alignment, np.asarray(embeddings),
                        QualityProfile.from_json(cal.quality), pipeline.embed_arrays)
    return a, b


def _unfit_reasons(qualities: tuple[PhotoQuality, PhotoQuality] | None) -> str:
    """Why either photo is outside the calibration photos' quality range, in plain words."""
    if qualities is None:
        return ""
    parts = [f"photo {label}: {'; '.join(q.reasons)}"
             for label, q in zip("AB", qualities, strict=True) if q.failing]
    return "; ".join(parts)


def _evidence_for_unfit(cal: Calibration, similarity: float, decision: Decision
                        ) -> tuple[float, str] | None:
    """The LR for a pair with an unfit photo: the fit on degraded photos where one is stored,
    else the usual fit with its population marked as not matching this pair."""
    degraded = cal.likelihood(similarity, "degraded")
    if degraded is not None and degraded[1] == "degraded":
        return degraded
    assert decision.evidence is not None
    value, population = decision.evidence
    return value, f"{population} (a photo here is outside its quality range)"


def _evidence(decision: Decision, options: VerdictOptions) -> dict[str, Any]:
    """The verdict's strength-of-evidence fields: log10 LR, its population, the verbal scale
    and, only for a prior the user states, P(same)."""
    if decision.evidence is None:
        return {"prior_odds": options.prior_odds}
    log10_lr, population = decision.evidence
    return {"log10_lr": log10_lr, "lr_population": population, "verbal": verbal(log10_lr),
            "prior_odds": options.prior_odds,
            "p_same": None if options.prior_odds is None
            else posterior_same(log10_lr, options.prior_odds)}


def verify(
    path_a: str | Path, path_b: str | Path, backbone: str = DEFAULT_BACKBONE,
    pipeline: FacePipeline | None = None, options: VerdictOptions | None = None,
) -> Verdict:
    """Are the faces in two photos the same person? Detects, aligns, embeds and decides;
    with ``options.max_error``, answers "not sure" where the stored selective rule would not."""
    pipe = pipeline or FacePipeline(backbone)
    pair = pipe.pair(path_a, path_b)
    return verdict_for_pair(pipe, pair, str(path_a), str(path_b), options, forward_only=True)
