"""The part-filter benchmark's table (``benchmark interpretable``), torch-free: the docs
tables regenerate from ``docs/results`` without loading a model."""

from __future__ import annotations

COLUMNS = (("clean_accuracy", "LFW clean acc", "{:.4f}"),
           ("occluded_accuracy", "occluded acc", "{:.4f}"),
           ("accuracy_drop", "drop", "{:.4f}"),
           ("clean_tar@0.01", "TAR@1e-2 clean", "{:.4f}"),
           ("occluded_tar@0.01", "TAR@1e-2 occl.", "{:.4f}"),
           ("clean_tar@0.001", "TAR@1e-3 clean", "{:.4f}"),
           ("occluded_tar@0.001", "TAR@1e-3 occl.", "{:.4f}"),
           ("yale_eer", "Yale EER", "{:.3f}"),
           ("peak_spread", "peak spread (cells)", "{:.2f}"),
           ("peak_std_median", "per-filter peak std (cells)", "{:.2f}"))


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    head = "| model | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in rows.items():
        cells = [fmt.format(row[k]) if k in row else "–" for k, _, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
