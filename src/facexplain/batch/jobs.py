"""The two batch use cases, ``batch_explain`` and ``batch_verify``: resume from what is on disk,
run the rest on Ray, and write the gallery / CSV.

Why resume from disk: a batch of thousands of pairs is interrupted (Ctrl-C, a lost machine);
the manifest (explain) or the CSV (verify) lists what is finished, so a rerun computes only the
rest and never lists a pair twice.
"""

from __future__ import annotations

import csv
import json
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
from facexplain.errors import InvalidArgument

# The pair, then every field of ``Verdict.to_dict`` but the paths (``verify --json``), then the
# run's own; a field added to the verdict must be added here too (a test compares them).
CSV_FIELDS = ("id", "a", "b", "label", "status", "similarity", "threshold", "same", "answer",
              "confidence", "backbone", "warnings", "calibration_population", "out_of_scope",
              "max_error", "rule", "log10_lr", "lr_population", "verbal", "prior_odds",
              "p_same", "quality_a", "quality_b", "quality_reasons", "seconds", "worker", "error",
              "reason")
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
    """Ids of the pairs a verdict file (CSV or JSON lines) already holds."""
    if not path.is_file():
        return set()
    if path.suffix == ".jsonl":
        return {str(r["id"]) for r in (json.loads(x) for x in
                                       path.read_text(encoding="utf-8").splitlines() if x)}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["id"] for row in csv.DictReader(fh) if row.get("id")}


def _csv_cell(value: object) -> object:
    return " | ".join(str(v) for v in value) if isinstance(value, list) else value


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the CSV: lists joined, each photo's quality score and the reasons a photo is
    outside the calibration photos' range (the JSON lines keep the whole record)."""
    out = {k: _csv_cell(v) for k, v in row.items() if k != "quality"}
    quality = row.get("quality") or {}
    for label in ("a", "b"):
        out[f"quality_{label}"] = (quality.get(label) or {}).get("score")
    out["quality_reasons"] = " | ".join(
        f"photo {label.upper()}: {reason}" for label in ("a", "b")
        for reason in (quality.get(label) or {}).get("reasons", []))
    return out


def _check_header(path: Path) -> None:
    """A CSV written with other columns (another version) is not appended to: one line."""
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if header and tuple(header) != CSV_FIELDS:
        raise InvalidArgument(f"{path} has other columns than this version writes; give a new "
                              "--out file (or remove it to start again)")


def batch_verify(job: BatchJob, pairs: Sequence[BatchPair], csv_path: Path, workers: int = 2,
                 address: str | None = None, progress: bool = True,
                 on_workers: Callable[[list[int]], None] | None = None) -> BatchStats:
    """Verdicts of every pair not yet in ``csv_path``, appended as they finish: a CSV (lists
    joined by ' | ') or, for a ``.jsonl`` path, one JSON object a line. Each row holds every
    field of ``verify --json`` (the same verdict, with ``job.verdict``'s options)."""
    done = read_csv_ids(csv_path)
    todo = [p for p in pairs if p.id not in done]
    new = not csv_path.is_file() or csv_path.stat().st_size == 0
    as_json = csv_path.suffix == ".jsonl"
    if not new and not as_json:
        _check_header(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        if new and not as_json:
            writer.writeheader()

        def record(rows: list[dict[str, Any]]) -> None:
            if as_json:
                fh.writelines(json.dumps(r) + "\n" for r in rows)
            else:
                writer.writerows(_csv_row(r) for r in rows)
            fh.flush()
            os.fsync(fh.fileno())

        return run_pairs(job, todo, "verify", record, workers=workers, address=address,
                         chunk=VERIFY_CHUNK, skipped=len(pairs) - len(todo), progress=progress,
                         on_workers=on_workers)
