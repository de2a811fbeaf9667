"""The library's front door: ``verify(path_a, path_b)`` and friends."""

from __future__ import annotations

from pathlib import Path

from facexplain.pipeline import FacePipeline
from facexplain.scoring import cosine, get_calibration
from facexplain.types import FacePair, Verdict


def verdict_for_pair(pipeline: FacePipeline, pair: FacePair, path_a: str, path_b: str) -> Verdict:
    """Score an aligned pair with the pipeline's backbone and its calibrated threshold."""
    cal = get_calibration(pipeline.spec.name)
    emb = pipeline.embed(pair.tensor)
    similarity = float(cosine(emb[0:1], emb[1:2])[0])
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
    path_a: str | Path, path_b: str | Path, backbone: str = "sface",
    pipeline: FacePipeline | None = None,
) -> Verdict:
    """Are the faces in two photos the same person? Detects, aligns, embeds and decides."""
    pipe = pipeline or FacePipeline(backbone)
    pair = pipe.pair(path_a, path_b)
    return verdict_for_pair(pipe, pair, str(path_a), str(path_b))
