"""The tables of a ``benchmark xcos`` result (the ones docs/BENCHMARKS.md records), torch-free:
the docs tables regenerate from ``docs/results`` without loading a model."""

from __future__ import annotations

from typing import Any

COLUMNS = ["cosine", "xcos_U", "xcos_P", "xcos_L"]


def _fold_list(s: dict[str, Any]) -> str:
    dev = s["development_folds"]
    assert isinstance(dev, list)
    return ",".join(str(f) for f in range(1, 11) if f not in dev)


def accuracy_table(s: dict[str, Any]) -> list[str]:
    """LFW 10-fold accuracy of the teacher and xCos U/P/L, untouched folds, Pearson r."""
    acc, r, untouched = s["accuracy"], s["pearson_r_vs_teacher"], s["accuracy_untouched_folds"]
    cols = COLUMNS
    return [
        f"| {s['backbone']} (teacher {s['teacher']}) | teacher | " + " | ".join(cols[1:]) + " |",
        "|---|---|---|---|---|",
        "| LFW 10-fold accuracy (%) | " + f"{100 * acc['teacher']:.2f} | "
        + " | ".join(f"{100 * acc[c]:.2f}" for c in cols[1:]) + " |",
        f"| folds {_fold_list(s)} only (%) | "
        + " | ".join(f"{100 * untouched[c]:.2f}" for c in ["teacher", *cols[1:]]) + " |",
        "| Pearson r vs teacher | 1 | "
        + " | ".join(f"{r[c.removeprefix('xcos_')]:.4f}" for c in cols[1:]) + " |",
    ]


def occlusion_table(s: dict[str, Any]) -> list[str]:
    """Accuracy with face B occluded (strokes per area, mask templates) and the drop."""
    acc, occ = s["accuracy"], s["occlusion_accuracy"]
    lines = ["| occlusion of face B | " + " | ".join(COLUMNS) + " |", "|---|---|---|---|---|",
             "| none | " + " | ".join(f"{100 * acc[c]:.2f}" for c in COLUMNS) + " |"]
    for cond, row in occ.items():
        name = "mask templates" if cond == "templates" else f"strokes {100 * float(cond):.0f}%"
        lines.append(f"| {name} | " + " | ".join(
            f"{100 * row[c]:.2f} ({100 * (row[c] - acc[c]):+.2f})" for c in COLUMNS) + " |")
    return lines


def _folds(folds: list[int]) -> str:
    """[3, 4, ..., 10] -> '3–10'; otherwise the list."""
    if folds and folds == list(range(folds[0], folds[-1] + 1)) and len(folds) > 2:
        return f"{folds[0]}–{folds[-1]}"
    return ",".join(str(f) for f in folds)


def heads_table(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Several runs side by side (``(label, result)``): LFW 10-fold accuracy of the teacher and
    xCos U/P/L (L's difference to the teacher), Pearson r, then the folds no choice saw."""
    lines = ["| LFW accuracy (%) | teacher cosine | xCos-U | xCos-P | xCos-L | "
             "Pearson r (U / P / L) |", "|---|---|---|---|---|---|"]
    for label, s in runs:
        acc, untouched, r = s["accuracy"], s["accuracy_untouched_folds"], s["pearson_r_vs_teacher"]
        dev = s["development_folds"]
        rest = [f for f in range(1, 11) if f not in dev]
        for name, a, rs in ((f"{label} ({s['node']}), 10 folds", acc,
                             " / ".join(f"{r[k]:.3f}" for k in ("U", "P", "L"))),
                            (f"{label}, folds {_folds(rest)} only", untouched, "")):
            lines.append(f"| {name} | {100 * a['teacher']:.2f} | {100 * a['xcos_U']:.2f} | "
                         f"{100 * a['xcos_P']:.2f} | {100 * a['xcos_L']:.2f} "
                         f"({100 * (a['xcos_L'] - a['teacher']):+.2f}) | {rs} |")
    return lines


def xcos_tables(s: dict[str, Any]) -> list[str]:
    """Both tables and the cost per pair, as ``benchmark xcos`` prints them."""
    lines = [*accuracy_table(s), "", *occlusion_table(s)]
    timing = s["timing"]
    if timing:
        lines += [
            "",
            f"cost per pair (ms, one pair per call, torch threads {timing['threads']:.0f}): cosine "
            f"{timing['cosine_ms']:.1f}, xCos-L {timing['xcos_ms']:.1f}, xCos-L + cosine "
            f"{timing['xcos_and_cosine_ms']:.1f}, head alone {timing['head_only_ms']:.2f}",
        ]
    return lines
