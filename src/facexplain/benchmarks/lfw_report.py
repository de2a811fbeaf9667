"""The LFW verification table of ``benchmark lfw`` results (torch-free: the docs table
regenerates from ``docs/results`` without loading a model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def lfw_table(docs: Sequence[dict[str, Any]]) -> str:
    """One row per run: 10-fold accuracy (mean ± std over folds), AUC, TAR@FAR=1e-3, the mean
    fold threshold, pairs, images without a face found, seconds and date."""
    lines = ["| backbone | accuracy (mean ± std over folds) | AUC | TAR@FAR=1e-3 | threshold | "
             "pairs | no face | s | date |", "|---|---|---|---|---|---|---|---|---|"]
    for d in docs:
        name = f"`{d['backbone']}{' --flip' if d.get('flip') else ''}`"
        lines.append(f"| {name} | {d['accuracy_mean']:.4f} ± {d['accuracy_std']:.4f} | "
                     f"{d['auc']:.5f} | {d['tar_at_far_1e-3']:.4f} | {d['threshold_mean']:.4f} | "
                     f"{d['n_pairs']:,} | {d['n_no_face']} | {d['seconds']:g} | {d['date']} |")
    return "\n".join(lines)
