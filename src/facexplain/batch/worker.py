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

import numpy as np
import torch

from facexplain.backbones.base import FaceModel
from facexplain.backbones.spec import BackboneSpec
from facexplain.errors import FacexplainError
from facexplain.method_info import ExplainOptions
from facexplain.types import AlignedFace, Verdict, VerdictOptions

PAIRS_DIR = "pairs"


@dataclass(frozen=True)
class BatchJob:
    """What every worker does: the backbone, the methods and options, the verdict's options
(the same ``VerdictOptions`` as ``verify``), where results go."""

    out: Path
    backbone: str = "sface"
    methods: str = "occlusion"
    options: ExplainOptions = field(default_factory=ExplainOptions)
    threads: int = 1
    verdict: VerdictOptions = field(default_factory=VerdictOptions)


def _failed(pair: dict[str, Any], err: BaseException, started: float) -> dict[str, Any]:
    internal = not isinstance(err, FacexplainError)
    reason = " ".join(str(err).split()) or type(err).__name__
    return {**pair, "status": "failed", "error": type(err).__name__,
            "reason": f"internal error: {reason}" if internal else reason,
            "seconds": round(time.perf_counter() - started, 3), "worker": os.getpid()}


def verdict_fields(verdict: Verdict) -> dict[str, object]:
    """A batch row's verdict: every field of ``Verdict.to_dict`` (what ``verify --json`` prints)
    but the photo paths, which the row holds as ``a`` and ``b``."""
    return {k: v for k, v in verdict.to_dict().items() if k not in ("path_a", "path_b")}


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
        self._faces: dict[str, tuple[AlignedFace, np.ndarray]] = {}

    def pid(self) -> int:
        return os.getpid()

    def explain(self, pair: dict[str, Any]) -> dict[str, Any]:
        """Explain one pair into ``<out>/pairs/<id>/``; the manifest row comes back."""
        from facexplain.api import explain_pair
        from facexplain.report.html import write_explanation

        started = time.perf_counter()
        try:
            result = explain_pair(pair["a"], pair["b"], self.job.methods,
                                  options=self.job.options, pipeline=self.pipe,
                                  verdict=self.job.verdict)
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
        done = time.perf_counter()
        return {**pair, "status": "done", **verdict_fields(result.verdict),
                "max_delta": max_delta(result), "folder": f"{PAIRS_DIR}/{pair['id']}",
                "worker": os.getpid(),
                "seconds": {"explain": round(computed - started, 3),
                            "write": round(done - computed, 3),
                            "total": round(done - started, 3)}}

    def _face(self, path: str) -> tuple[AlignedFace, np.ndarray]:
        """A photo's aligned face and its embedding, computed once per worker."""
        hit = self._faces.get(path)
        if hit is None:
            from facexplain.api import embed_face

            face = self.pipe.align_path(path)
            hit = (face, embed_face(self.pipe, face))
            self._faces[path] = hit
        return hit

    def verify(self, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Verdicts of a chunk of pairs (each photo embedded once per worker), each from the
        library's one verdict (``api.verdict_for_pair``) with the job's verdict options."""
        from facexplain.api import verdict_for_pair
        from facexplain.types import FacePair

        rows = []
        for pair in pairs:
            started = time.perf_counter()
            try:
                (fa, ea), (fb, eb) = self._face(pair["a"]), self._face(pair["b"])
                verdict = verdict_for_pair(self.pipe, FacePair(fa, fb, self.pipe.spec.name),
                                           pair["a"], pair["b"], self.job.verdict,
                                           embeddings=np.stack([ea, eb]))
            except Exception as err:  # noqa: BLE001 - recorded with its reason
                rows.append(_failed(pair, err, started))
                continue
            rows.append({**pair, "status": "done", **verdict_fields(verdict),
                         "worker": os.getpid(),
                         "seconds": round(time.perf_counter() - started, 4)})
        return rows
