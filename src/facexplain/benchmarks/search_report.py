"""Tables of the binary-code and search benchmarks (``benchmark codes | gallery |
search-speed``), of the occlusion statistics (``benchmark occlusion-stats``) and of occlusion's
speed against Captum (``bench/occlusion_speed.py``), torch-free: the docs tables regenerate
from ``docs/results`` without loading a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facexplain.benchmarks.table_format import half_up as _half_up
from facexplain.benchmarks.table_format import sci as _sci


def codes_table(docs: Sequence[dict[str, Any]]) -> str:
    """One row per backbone: held-out accuracy (folds 6-10) of float, sign, median and the
    learned code chosen on folds 1-5, with the drop in points and the bytes per face."""
    lines = ["| backbone | float cosine | sign codes (drop) | median codes (drop) | learned, "
             "chosen on folds 1-5 (drop) | bytes/face float → sign → learned |",
             "|---|---|---|---|---|---|"]
    for d in docs:
        f, s, m, c = d["float"], d["sign"], d["median"], d["chosen"]
        lines.append(
            f"| `{d['backbone']}` | {f['test_accuracy']:.4f} | {s['test_accuracy']:.4f} "
            f"({s['test_drop_points']:.2f} pt) | {m['test_accuracy']:.4f} "
            f"({m['test_drop_points']:.2f} pt) | `{c['code']}`: {c['test_accuracy']:.4f} "
            f"({c['test_drop_points']:.2f} pt) | {f['bytes_per_face']} → {s['bytes_per_face']} "
            f"→ {c['bytes_per_face']} |")
    return "\n".join(lines)


def gallery_table(docs: Sequence[dict[str, Any]]) -> str:
    """One row per backbone: rank-1 (short list + re-rank and exact float), rank-5, ms."""
    lines = ["| backbone | probes | rank-1 (short list + re-rank) | rank-1 (exact float) | "
             "rank-5 | ms per search |", "|---|---|---|---|---|---|"]
    for d in docs:
        lines.append(f"| `{d['backbone']}` | {d['n_probes']} | {d['rank_1']:.3f} | "
                     f"{d['rank_1_exact_float']:.3f} | {d['rank_5']:.3f} | "
                     f"{d['ms_per_search']:.0f} |")
    return "\n".join(lines)


def search_table(doc: dict[str, Any]) -> str:
    """One row per search: short list, ms per query, speed-up over exact float, recall@k."""
    k = doc["k"]
    lines = [f"| search | short list | ms / query | speed-up vs exact float | recall@{k} |",
             "|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['search']} | {r.get('short_list', '-')} | {r['ms_per_query']:g} | "
                     f"{r['speedup']:g}x | {r[f'recall_at_{k}']:.4f} |")
    return "\n".join(lines)


def occlusion_stats_table(docs: Sequence[dict[str, Any]]) -> str:
    """One row per backbone: held-out max-Δ AUC, Θ, genuine pairs dark, impostors lit, the
    Θ rule's accuracy and the seconds per pair (with the run's threads)."""
    head = (f"| backbone, k={docs[0]['patch']} s={docs[0]['stride']} | held-out max-Δ AUC | Θ | "
            "genuine dark | impostors lit | rule accuracy | s/pair here |") if docs else ""
    lines = [head, "|---|---|---|---|---|---|---|"]
    for d in docs:
        threads = str(d.get("machine", "")).partition(", ")[2] or "-"
        lines.append(
            f"| `{d['backbone']}` | {d['heldout_auc_mean']:.3f} ± {d['heldout_auc_std']:.3f} | "
            f"{d['theta_mean']:.4f} | {100 * d['genuine_dark_fraction']:.1f}% | "
            f"{100 * d['impostor_lit_fraction']:.1f}% | {d['heldout_accuracy_mean']:.3f} | "
            f"{d['seconds_per_pair']:g} ({threads}) |")
    return "\n".join(lines)


def occlusion_speed_table(runs: Sequence[dict[str, Any]]) -> str:
    """Pairwise occlusion against Captum per backbone and (k, s), rows of one or more
    ``bench/occlusion_speed.py`` files grouped by backbone: windows, seconds per pair, the
    ratio, the largest map difference and, where measured, the plain (full re-evaluation) run."""
    lines = ["| backbone (input) | k, s | windows | ours s/pair | Captum s/pair | Captum / ours | "
             "max abs diff | plain s/pair | Captum / plain |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = list(dict.fromkeys(r["backbone"] for r in runs))
    for backbone in order:
        for i, r in enumerate(r for r in runs if r["backbone"] == backbone):
            name = f"`{backbone}`" + (f" ({r['size']})" if i == 0 else "")
            plain = (f"{_half_up(r['plain_s'])} | {_half_up(r['ratio_plain'])}"
                     if r.get("plain_s") is not None else " | ")
            lines.append(f"| {name} | {r['k']}, {r['s']} | {r['windows']:,} | "
                         f"{_half_up(r['ours_s'])} | {_half_up(r['captum_s'])} | "
                         f"{_half_up(r['ratio'])} | {_sci(r['max_abs_diff'])} | {plain} |")
    return "\n".join(lines)
