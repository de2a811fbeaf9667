"""``benchmark quality``'s tables and figure: EDC pAUC against random discard, rank check and
the "not sure" rule with the quality veto."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facexplain.benchmarks.edc import DISCARD

POPULATIONS = {"lfw": "LFW genuine pairs (FNMR)", "lookalike": "look-alike pairs (all errors)",
               "degraded": "held-out pairs + degraded copies (FNMR)"}


def _verdict(row: dict[str, Any]) -> str:
    lo, hi = row["difference_ci"]
    if row["n_errors"] == 0:
        return "no errors to remove"
    if hi < 0:
        return "better than random"
    if lo > 0:
        return "worse than random"
    return "inconclusive"


def quality_table(doc: dict[str, Any], threshold: str = "calibrated") -> str:
    """Markdown: per population and measure, pAUC (0-20 % discard) against random discard."""
    lines = [f"| {doc['backbone']}, threshold {threshold} ({doc['thresholds'][threshold]:.4f}):"
             " population | measure | pAUC | random | difference [95% CI] | reading |",
             "|---|---|---|---|---|---|"]
    for pop, rows in doc["edc"][threshold].items():
        for name, r in rows.items():
            label = f"unified ({doc['unified']})" if name == "unified" else name
            if name in ("stability", "ui_distance", "norm") and name == doc["unified"]:
                continue  # shown as "unified"
            lo, hi = r["difference_ci"]
            lines.append(f"| {POPULATIONS.get(pop, pop)} ({r['n_pairs']:,}; {r['n_errors']} "
                         f"errors) | {label} | {r['pauc']:.5f} | {r['pauc_random']:.5f} | "
                         f"{r['difference']:+.5f} [{lo:+.5f}, {hi:+.5f}] | {_verdict(r)} |")
    return "\n".join(lines)


def rank_table(doc: dict[str, Any]) -> str:
    lines = [f"| {doc['backbone']}: degradation | photos | unified score below the original's "
             "[95% CI] |", "|---|---|---|"]
    for kind, r in doc["degraded_below_original"].items():
        lines.append(f"| {kind} | {r['n']:,} | {r['share']:.3f} [{r['ci'][0]:.3f}, "
                     f"{r['ci'][1]:.3f}] |")
    return "\n".join(lines)


def veto_table(doc: dict[str, Any]) -> str:
    lines = [f"| {doc['backbone']}, --max-error 0.01: population | rule | answered | error "
             "among answered [95% CI] | photos flagged |", "|---|---|---|---|---|"]
    for pop, rows in doc["not_sure_rule"].items():
        for label in ("rule", "rule+quality"):
            r = rows[label]
            err = "—" if r["error"] is None else f"{r['error']:.4f}"
            lines.append(f"| {POPULATIONS.get(pop, pop)} | {label} | {r['coverage']:.3f} "
                         f"({r['answered']:,}) | {err} [{r['error_ci'][0]:.4f}, "
                         f"{r['error_ci'][1]:.4f}] | {rows['flagged_share']:.3f} |")
    return "\n".join(lines)


def stability_table(doc: dict[str, Any]) -> str:
    """The sampled stability score against the chosen unified score."""
    sample = doc.get("stability_sample")
    if not sample:
        return ""
    lines = [f"| {doc['backbone']}: {sample['n_pairs']} sampled held-out pairs + degraded "
             "copies: measure | pAUC | random | difference [95% CI] | degraded below original "
             "[95% CI] |", "|---|---|---|---|---|"]
    for name, r in sample["edc"]["degraded"].items():
        lo, hi = r["difference_ci"]
        b = sample["below_original"][name]
        lines.append(f"| {name} | {r['pauc']:.5f} | {r['pauc_random']:.5f} | "
                     f"{r['difference']:+.5f} [{lo:+.5f}, {hi:+.5f}] | {b['share']:.3f} "
                     f"[{b['ci'][0]:.3f}, {b['ci'][1]:.3f}] |")
    return "\n".join(lines)


def level_line(doc: dict[str, Any]) -> str:
    """Which quality range was kept on folds 1-5 and what each one tried gave there."""
    tried = doc.get("level_choice_folds_1_5")
    if not tried:
        return ""
    parts = []
    for level, r in tried.items():
        lfw, deg = r["lfw"]["rule+quality"], r["degraded"]["rule+quality"]
        parts.append(f"{float(level):g}% tails: LFW coverage {lfw['coverage']:.3f}, degraded "
                     f"error {deg['error'] if deg['error'] is not None else '-'}")
    return (f"Quality range kept (folds 1-5): components and unified score beyond the "
            f"{doc['level']:g}% tails of the LFW calibration photos fail ({'; '.join(parts)}).")


def lr_degraded_line(doc: dict[str, Any]) -> str:
    r = doc.get("degraded_lr")
    if not r:
        return ""
    q = r["heldout"]
    return (f"LR for pairs with a degraded photo ({r['kind']}, fitted on {r['fitted_on']:,} pairs "
            f"of folds 1-5, tested on {r['tested_on']:,} of folds 6-10): Cllr {q['cllr']:.4f} "
            f"[{q['cllr_ci'][0]:.4f}, {q['cllr_ci'][1]:.4f}], Cllr_min {q['cllr_min']:.4f} "
            f"[{q['cllr_min_ci'][0]:.4f}, {q['cllr_min_ci'][1]:.4f}].")


def plot_edc(doc: dict[str, Any], path: Path) -> Path:
    """EDC curves per population: the unified score, each component and random discard."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pops = list(doc["edc"]["calibrated"])
    fig, axes = plt.subplots(1, len(pops), figsize=(5.2 * len(pops), 4.2))
    x = 100 * DISCARD
    for ax, pop in zip(axes, pops, strict=True):
        rows = doc["edc"]["calibrated"][pop]
        for name, r in rows.items():
            if name in ("stability", "ui_distance", "norm"):
                continue
            bold = name == "unified"
            ax.plot(x, r["curve"], lw=2.5 if bold else 1.0, alpha=1.0 if bold else 0.7,
                    label=f"unified ({doc['unified']})" if bold else name)
        ax.axhline(rows["unified"]["pauc_random"], color="k", ls="--", lw=1.2, label="random")
        ax.set_title(POPULATIONS.get(pop, pop), fontsize=10)
        ax.set_xlabel("pairs discarded (%)")
        ax.set_ylabel("error at the calibrated threshold")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{doc['backbone']}: error versus discard (held-out folds 6-10)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class QualityResult:
    """A ``benchmark quality`` result, typed enough for its tables."""

    backbone: str
    edc: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> QualityResult:
        return cls(doc["backbone"], doc["edc"],
                   {k: v for k, v in doc.items() if k not in ("backbone", "edc")})

    def to_json(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "edc": self.edc, **self.extra}

    def table(self) -> str:
        doc = self.to_json()
        parts = [quality_table(doc), rank_table(doc), level_line(doc), veto_table(doc),
                 stability_table(doc), lr_degraded_line(doc)]
        return "\n\n".join(p for p in parts if p)
