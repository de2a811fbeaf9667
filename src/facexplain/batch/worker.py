"""The work of one batch worker: models loaded once, then pair after pair (no Ray in here).

Why no Ray: the same class runs as a Ray actor (``runner``) and directly in tests and in
debugging. Every pair's outcome comes back as a row (never an exception), so one bad photo is
recorded with its reason and the batch goes on. A pair's folder is written under a temporary
name and renamed into place, so a worker killed mid-write leaves no half folder behind.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facexplain.backbones.base import FaceModel
from facexplain.backbones.spec import BackboneSpec
from facexplain.errors import FacexplainError
from facexplain.method_info import ExplainOptions

PAIRS_DIR = "pairs"


@dataclass(frozen=True)
class BatchJob:
    """What every worker does: the backbone, the methods and options, where results go."""

    out: Path
    backbone: str = "sface"
    methods: str = "occlusion"
    options: ExplainOptions = field(default_factory=ExplainOptions)
    threads: int = 1


def _failed(pair: dict[str, Any], err: BaseException, started: float) -> dict[str, Any]:
    internal = not isinstance(err, FacexplainError)
    reason = " ".join(str(err).split()) or type(err).__name__
    return {**pair, "status": "failed", "error": type(err).__name__,
            "reason": f"internal error: {reason}" if internal else reason,
            "seconds": round(time.perf_counter() - started, 3), "worker": os.getpid()}


def max_delta(result: Any) -> float | None:
    """Largest |Δ similarity| in the pair's 'delta' maps (occlusion's: what hiding a patch
    changes); None when no method returned one."""
    values = [float(r.explanation.maps["delta"].abs().max()) for r in result.results
              if "delta" in r.explanation.maps]
    return max(values) if values else None


class PairWorker:
    """Holds one pipeline (detector + backbone) for the worker's whole life."""

    def __init__(self, job: BatchJob,
                 registered: tuple[BackboneSpec, FaceModel] | None = None) -> None:
        torch.set_num_threads(max(1, job.threads))
        if registered is not None:  # a torch module registered in the driver's process
            from facexplain.backbones.user import register_backbone

            register_backbone(job.backbone, registered[1], registered[0])
        from facexplain.pipeline import FacePipeline

        self.job = job
        self.pipe = FacePipeline(job.backbone)
        self._embeddings: dict[str, torch.Tensor] = {}

    def pid(self) -> int:
        return os.getpid()

    def explain(self, pair: dict[str, Any]) -> dict[str, Any]:
        """Explain one pair into ``<out>/pairs/<id>/``; the manifest row comes back."""
        from facexplain.api import explain_pair
        from facexplain.report.html import write_explanation

        started = time.perf_counter()
        try:
            result = explain_pair(pair["a"], pair["b"], self.job.methods,
                                  options=self.job.options, pipeline=self.pipe)
            computed = time.perf_counter()
            root = self.job.out / PAIRS_DIR
            for stale in root.glob(f".{pair['id']}.*.tmp"):  # left by a worker that died
                shutil.rmtree(stale, ignore_errors=True)
            tmp = root / f".{pair['id']}.{os.getpid()}.tmp"
            write_explanation(result, tmp)
            final = root / pair["id"]
            shutil.rmtree(final, ignore_errors=True)  # left by a worker that died after writing
            os.replace(tmp, final)
        except Exception as err:  # noqa: BLE001 - recorded with its reason; the batch goes on
            return _failed(pair, err, started)
        v = result.verdict
        done = time.perf_counter()
        return {**pair, "status": "done", "similarity": v.similarity, "threshold": v.threshold,
                "verdict": "same" if v.same else "different", "confidence": v.confidence,
                "max_delta": max_delta(result), "folder": f"{PAIRS_DIR}/{pair['id']}",
                "warnings": list(v.warnings), "worker": os.getpid(),
                "seconds": {"explain": round(computed - started, 3),
                            "write": round(done - computed, 3),
                            "total": round(done - started, 3)}}

    def _embedding(self, path: str) -> torch.Tensor:
        hit = self._embeddings.get(path)
        if hit is None:
            face = self.pipe.align_path(path)
            hit = self.pipe.embed(face.pixels.unsqueeze(0))[0]
            self._embeddings[path] = hit
        return hit

    def verify(self, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Verdicts of a chunk of pairs (each photo embedded once per worker)."""
        from facexplain.scoring import cosine, get_calibration

        cal = get_calibration(self.job.backbone)
        rows = []
        for pair in pairs:
            started = time.perf_counter()
            try:
                ea, eb = self._embedding(pair["a"]), self._embedding(pair["b"])
                sim = float(cosine(ea.unsqueeze(0), eb.unsqueeze(0))[0])
            except Exception as err:  # noqa: BLE001 - recorded with its reason
                rows.append(_failed(pair, err, started))
                continue
            rows.append({**pair, "status": "done", "similarity": sim,
                         "threshold": cal.threshold,
                         "verdict": "same" if sim >= cal.threshold else "different",
                         "confidence": cal.confidence(sim), "worker": os.getpid(),
                         "seconds": round(time.perf_counter() - started, 4)})
        return rows
