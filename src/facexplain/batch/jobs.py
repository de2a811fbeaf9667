"""The two batch use cases, ``batch_explain`` and ``batch_verify``: resume from what is on disk,
run the rest on Ray, and write the gallery / CSV.

Why resume from disk: a batch of thousands of pairs is interrupted (Ctrl-C, a lost machine);
the manifest (explain) or the CSV (verify) lists what is finished, so a rerun computes only the
rest and never lists a pair twice.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from facexplain.batch.gallery import write_gallery
from facexplain.batch.manifest import MANIFEST, Manifest, read_manifest
from facexplain.batch.pairs import BatchPair
from facexplain.batch.runner import BatchStats, run_pairs
from facexplain.batch.worker import PAIRS_DIR, BatchJob

CSV_FIELDS = ("id", "a", "b", "same", "status", "similarity", "threshold", "verdict",
              "confidence", "seconds", "worker", "error", "reason")
VERIFY_CHUNK = 16


def batch_explain(job: BatchJob, pairs: Sequence[BatchPair], workers: int = 2,
                  address: str | None = None, retry_failed: bool = False,
                  progress: bool = True,
                  on_workers: Callable[[list[int]], None] | None = None) -> BatchStats:
    """Explain every pair not yet in ``<out>/manifest.jsonl``; each in ``<out>/pairs/<id>/``."""
    path = job.out / MANIFEST
    finished = read_manifest(path)
    if retry_failed:
        finished = {k: r for k, r in finished.items() if r.get("status") == "done"}
    todo = [p for p in pairs if p.id not in finished]
    manifest = Manifest(path)

    def record(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            manifest.append(row)

    try:
        stats = run_pairs(job, todo, "explain", record,
                          workers=workers, address=address, skipped=len(pairs) - len(todo),
                          progress=progress, on_workers=on_workers)
    finally:
        manifest.close()
        for stale in (job.out / PAIRS_DIR).glob(".*.tmp"):  # workers are gone by now
            shutil.rmtree(stale, ignore_errors=True)
        wanted = {p.id for p in pairs}
        rows = [r for k, r in read_manifest(path).items() if k in wanted]
        write_gallery(job.out, rows, job.backbone)
    return stats


def read_csv_ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["id"] for row in csv.DictReader(fh) if row.get("id")}


def batch_verify(job: BatchJob, pairs: Sequence[BatchPair], csv_path: Path, workers: int = 2,
                 address: str | None = None, progress: bool = True,
                 on_workers: Callable[[list[int]], None] | None = None) -> BatchStats:
    """Verdicts of every pair not yet in ``csv_path``, appended to it as they finish."""
    done = read_csv_ids(csv_path)
    todo = [p for p in pairs if p.id not in done]
    new = not csv_path.is_file() or csv_path.stat().st_size == 0
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()

        def record(rows: list[dict[str, Any]]) -> None:
            writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())

        return run_pairs(job, todo, "verify", record, workers=workers, address=address,
                         chunk=VERIFY_CHUNK, skipped=len(pairs) - len(todo), progress=progress,
                         on_workers=on_workers)
