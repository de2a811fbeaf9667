"""The table kinds docs/BENCHMARKS.md's markers name (``benchmarks.tables``): each turns the
parsed result files of one marker into the markdown table the benchmark's own command prints.

Kinds stay torch-free where the benchmark's report is (the method table reads the method
registry to know every map's row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from facexplain.benchmarks.calibration_report import (
    POPULATION_WORDS,
    calibration_table,
    selective_table,
)
from facexplain.benchmarks.lfw_report import lfw_table
from facexplain.benchmarks.lr_report import lr_table
from facexplain.benchmarks.parts_report import markdown_table
from facexplain.benchmarks.planted_report import components_table, planted_table
from facexplain.benchmarks.quality_report import QualityResult
from facexplain.benchmarks.sanity_report import SanityResult
from facexplain.benchmarks.search_report import (
    codes_table,
    gallery_table,
    occlusion_speed_table,
    occlusion_stats_table,
    search_table,
)
from facexplain.benchmarks.table_format import half_up
from facexplain.benchmarks.xcos_report import heads_table, occlusion_table, xcos_tables

Docs = list[dict[str, Any]]
SOURCE = "_source"  # the key under which ``tables.render`` hands a kind each file's name
TableFn = Callable[[Docs], str]
"""A table kind: the parsed result files, in the marker's order -> the markdown table."""

TABLE_KINDS: dict[str, TableFn] = {}


def table_kind(name: str) -> Callable[[TableFn], TableFn]:
    """Register ``fn`` as the table kind ``name`` (a decorator)."""
    def register(fn: TableFn) -> TableFn:
        if name in TABLE_KINDS:
            raise ValueError(f"table kind {name!r} registered twice")
        TABLE_KINDS[name] = fn
        return fn
    return register


def _one(docs: Docs, kind: str) -> dict[str, Any]:
    from facexplain.errors import InvalidArgument

    if len(docs) != 1:
        raise InvalidArgument(f"table kind {kind!r} reads one result file, got {len(docs)}")
    return docs[0]


@table_kind("lfw")
def _lfw(docs: Docs) -> str:
    """LFW 10-fold verification, one row per ``benchmark lfw`` result file."""
    return lfw_table(docs)


@table_kind("occlusion-stats")
def _occlusion_stats(docs: Docs) -> str:
    """Deep difference statistics and Θ (the paper's Fig. 3), one row per backbone."""
    return occlusion_stats_table(docs)


@table_kind("occlusion-speed")
def _occlusion_speed(docs: Docs) -> str:
    """Pairwise occlusion against Captum, the rows of one or more speed files (each a list)."""
    return occlusion_speed_table([r for d in docs for r in d["rows"]])


@table_kind("codes")
def _codes(docs: Docs) -> str:
    """Float, sign, median and learned codes on LFW's held-out folds, one row per backbone."""
    return codes_table(docs)


@table_kind("gallery")
def _gallery(docs: Docs) -> str:
    """Rank-1 identification of held-out LFW probes, one row per backbone."""
    return gallery_table(docs)


@table_kind("search-speed")
def _search(docs: Docs) -> str:
    """Search at 1M faces: exact float, Hamming, short list + exact re-rank."""
    return search_table(_one(docs, "search-speed"))


@table_kind("planted")
def _planted(docs: Docs) -> str:
    """The planted-difference game: per map, share / pointing / AUC / which face, controls."""
    return planted_table(_one(docs, "planted"))


@table_kind("planted-components")
def _planted_components(docs: Docs) -> str:
    """Component findings on the planted game: top-1/top-2, false findings, impostors, cost;
    one row per result file and component method."""
    return components_table(docs)


@table_kind("calibration")
def _calibration(docs: Docs) -> str:
    """Held-out ECE, Brier, log-loss per population and calibrator."""
    return calibration_table(_one(docs, "calibration"))


@table_kind("lr")
def _lr(docs: Docs) -> str:
    """Held-out Cllr, Cllr_min, Cllr_cal and EER per fitting/test population and calibrator."""
    return lr_table(_one(docs, "lr"))


@table_kind("calibration-selective")
def _selective(docs: Docs) -> str:
    """The "not sure" rule per error target: coverage and error among answered pairs."""
    return selective_table(_one(docs, "calibration-selective"))


@table_kind("calibration-scope")
def _scope(docs: Docs) -> str:
    """Pairs with an out-of-scope photo against the others, per population."""
    doc = _one(docs, "calibration-scope")
    lines = ["| population | pairs with an out-of-scope photo | accuracy flagged / in scope | "
             "ECE flagged [95% CI] | ECE in scope [95% CI] |", "|---|---|---|---|---|"]

    def ece(q: dict[str, Any] | None) -> str:
        return "-" if q is None else f"{q['ece']:.4f} [{q['ece_ci'][0]:.4f}, {q['ece_ci'][1]:.4f}]"

    for pop, s in doc["scope"].items():
        flagged, kept = s.get("flagged"), s.get("in_scope")
        acc = " / ".join("-" if q is None else f"{q['accuracy']:.4f}" for q in (flagged, kept))
        share = f"{round(100 * s['flagged_share'], 1):g}%"
        lines.append(f"| {POPULATION_WORDS.get(pop, pop)} | {share} | {acc} | {ece(flagged)} | "
                     f"{ece(kept)} |")
    return "\n".join(lines)


@table_kind("sanity")
def _sanity(docs: Docs) -> str:
    """Model randomisation: per method and measure, verdict, excess over chance and CI."""
    return SanityResult.from_json(_one(docs, "sanity")).table()


@table_kind("interpretable")
def _interpretable(docs: Docs) -> str:
    """The part-filter ablation (``benchmark interpretable``): one row per model. With more
    files, their heads follow the first file's rows (the backbone's cosine once), each named
    with how it was trained differently (unfrozen, its tail learning rate)."""
    rows: dict[str, dict[str, float]] = {}
    for i, doc in enumerate(docs):
        cfg = doc.get("config", {})
        suffix = (f", unfrozen, tail lr {cfg.get('tail_lr', 1e-4):g}" if cfg.get("unfreeze")
                  else "")
        for name, row in doc["rows"].items():
            if i and name.endswith(" cosine"):
                continue
            rows[name + suffix] = row
    return markdown_table(rows)


@table_kind("faithfulness-ranking")
def _faithfulness_ranking(docs: Docs) -> str:
    """Gain over random and rank per deletion/insertion family, mean rank, place."""
    from facexplain.benchmarks.faithfulness_ranks import ranking_table

    doc = _one(docs, "faithfulness-ranking")
    return ranking_table(doc["ranking"], doc["protocols"])


@table_kind("faithfulness-deletion")
def _faithfulness_deletion(docs: Docs) -> str:
    """Issue 3's deletion table: AUC ± 95% and gain over random per map, impostor difference
    maps and genuine similarity maps."""
    from facexplain.benchmarks.faithfulness_ranks import deletion_table

    return deletion_table(_one(docs, "faithfulness-deletion"))


@table_kind("layer-sweep")
def _layer_sweep(docs: Docs) -> str:
    """DeepID2+'s questions layer by layer (``bench/layer_sweep.py``), every swept layer of
    each backbone, input side first: sparsity, selectivity, verification AUC, robustness."""
    area = f"{100 * docs[0]['area']:.0f}% " if docs and "area" in docs[0] else ""
    lines = ["| layer (input side first) | units | on per image | units always on | best unit per "
             f"identity [95% CI] | verification AUC clean → face B {area}occluded | bits flipped "
             "/ two people's distance |", "|---|---|---|---|---|---|---|"]
    for doc in docs:
        rows = doc["rows"]
        for i, r in enumerate(rows):
            last = i + 1 < len(rows) and rows[i + 1]["layer"] == "embedding"
            sel = r["selectivity"]
            lines.append(
                f"| {doc['backbone']} {r['layer']}{' (last map)' if last else ''} | "
                f"{r['n_units']:,} | {r['sparsity_per_image']['mean']:.3f} | "
                f"{100 * r['always_active_units']:.0f}% | {sel['mean']:.3f} "
                f"[{sel['ci'][0]:.3f}, {sel['ci'][1]:.3f}] | {r['verification_auc_clean']:.3f} → "
                f"{r['verification_auc_occluded']:.3f} | {r['flipped_relative_to_impostor']:.2f} |")
    return "\n".join(lines)


@table_kind("web-latency")
def _web_latency(docs: Docs) -> str:
    """Jobs through the web app (``bench/web_latency.py``), one row per job, per file (a run
    without a preloaded model is marked): total and per stage, seconds."""
    stages = (("upload", 3), ("decode", 3), ("queued", 3), ("detect_align", 2), ("maps", 2),
              ("report", 2), ("poll", 2))
    lines = ["| job | total s | upload | decode | queued | detect + align | maps | report | poll |",
             "|---|---|---|---|---|---|---|---|---|"]
    for doc in docs:
        mark = "" if doc.get("preload") else ", no preload"
        for i, job in enumerate(doc["jobs"], 1):
            lines.append(f"| {i}{mark} | {half_up(job['total'])} | "
                         + " | ".join(half_up(job[k], p) for k, p in stages) + " |")
    return "\n".join(lines)


def _pct(share: float) -> str:
    """0.0095 -> '0.95%', 0.64 -> '64%', 7.52 -> '752%' (two significant digits below 10%)."""
    p = 100 * share
    return f"{p:.0f}%" if p >= 10 else f"{p:.2g}%"


@table_kind("ig-completeness")
def _ig_completeness(docs: Docs) -> str:
    """Integrated gradients' completeness error (``bench/ig_completeness.py``), one row per
    setting (file): median and largest error, pairs under 5%, the steps used."""
    from statistics import median

    lines = [f"| setting ({docs[0]['backbone']}, {len(docs[0]['rows'])} held-out LFW pairs) | "
             "completeness error median | max | pairs under 5% | steps |",
             "|---|---|---|---|---|"]
    for doc in docs:
        errors = [r["error"] for r in doc["rows"]]
        steps = [r["steps"] for r in doc["rows"]]
        setting = (f"{doc['fill']} baseline, "
                   + ("adaptive steps" if doc.get("steps") is None else f"{doc['steps']} steps"))
        used = (f"median {median(steps):g}, max {max(steps)}" if len(set(steps)) > 1
                else str(steps[0]))
        lines.append(f"| {setting} | {_pct(median(errors))} | {_pct(max(errors))} | "
                     f"{sum(e < 0.05 for e in errors)} / {len(errors)} | {used} |")
    return "\n".join(lines)


@table_kind("xcos-attention")
def _xcos_attention(docs: Docs) -> str:
    """Where xCos's attention W sits on the 7x7 grid (``bench/xcos_attention.py``): the share
    of W on the face cells, the border ring and (where measured) the four corners, against
    their share of the area."""
    doc = _one(docs, "xcos-attention")
    parts = (("face", "face cells (centre within the landmarks' box widened by half a cell: "
                      "3x3, eyes to mouth)"), ("border", "border ring (outermost cells)"),
             ("corner", "the four corners"))
    lines = [f"| cells of the {doc['grid'][0]}x{doc['grid'][1]} grid | share of the area | "
             "share of W (mean ± std over pairs) |", "|---|---|---|"]
    for key, words in parts:
        if f"{key}_area_share" in doc:
            lines.append(f"| {words} | {100 * doc[f'{key}_area_share']:.1f}% | "
                         f"{100 * doc[f'{key}_weight_share_mean']:.1f}% ± "
                         f"{100 * doc[f'{key}_weight_share_std']:.1f}% |")
    return "\n".join(lines)


@table_kind("xcos")
def _xcos(docs: Docs) -> str:
    """xCos against cosine: accuracy (U/P/L), Pearson r, occlusion, cost per pair."""
    return "\n".join(xcos_tables(_one(docs, "xcos")))


@table_kind("xcos-occlusion")
def _xcos_occlusion(docs: Docs) -> str:
    """xCos against cosine with face B occluded: accuracy and drop per condition."""
    return "\n".join(occlusion_table(_one(docs, "xcos-occlusion")))


@table_kind("xcos-heads")
def _xcos_heads(docs: Docs) -> str:
    """xCos heads side by side, one result file each (named by its file): 10-fold accuracy,
    Pearson r with the teacher, the folds no training choice looked at."""
    return "\n".join(heads_table([(f"`{d[SOURCE]}`", d) for d in docs]))


@table_kind("method-table")
def _method_table(docs: Docs) -> str:
    """Every method on one backbone: game, deletion/insertion, sanity and cost, from the
    planted, faithfulness, sanity and method-cost files (recognised by their fields)."""
    from facexplain.benchmarks.method_table import build_from, markdown

    groups: dict[str, Docs] = {"game": [], "faithfulness": [], "sanity": [], "cost": []}
    for doc in docs:
        group = ("game" if "per_face_rows" in doc else "faithfulness" if "summaries" in doc
                 else "sanity" if "states" in doc else "cost")
        groups[group].append(doc)
    return markdown(build_from(groups, str(docs[0]["backbone"])))


@table_kind("quality")
def _quality(docs: Docs) -> str:
    return QualityResult.from_json(_one(docs, "quality")).table()
