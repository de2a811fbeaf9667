"""Tables and reliability diagrams of a ``benchmark calibration`` result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POPULATION_WORDS = {"lfw": "LFW folds", "lookalike": "look-alike pairs", "yale": "Yale (grey)",
                    "planted": "planted pairs (all same person)"}


def calibration_table(doc: dict[str, Any]) -> str:
    """Markdown: held-out ECE, Brier, log-loss per population and calibrator."""
    lines = [f"| {doc['backbone']} | calibrator | ECE [95% CI] | Brier [95% CI] | log-loss | "
             "accuracy | verdicts > 99.9% (errors) |", "|---|---|---|---|---|---|---|"]
    for pop in doc["heldout"][doc["chosen"]]:
        for kind, by_pop in doc["heldout"].items():
            q = by_pop[pop]
            mark = " (kept)" if kind == doc["chosen"] else ""
            lines.append(
                f"| {POPULATION_WORDS.get(pop, pop)} ({q['n_pairs']:,}) | {kind}{mark} | "
                f"{q['ece']:.4f} [{q['ece_ci'][0]:.4f}, {q['ece_ci'][1]:.4f}] | "
                f"{q['brier']:.4f} [{q['brier_ci'][0]:.4f}, {q['brier_ci'][1]:.4f}] | "
                f"{q['log_loss']:.4f} | {q['accuracy']:.4f} | "
                f"{100 * q['over_999']:.0f}% ({q['errors_over_999']}) |")
    return "\n".join(lines)


def selective_table(doc: dict[str, Any]) -> str:
    """Markdown: held-out error among answered pairs and coverage, per target and population."""
    lines = [f"| {doc['backbone']}: target error | population (rule fitted on its other folds) "
             "| answered (coverage) | errors | error among answered [95% CI] |",
             "|---|---|---|---|---|"]
    for pop, rows in doc["selective_heldout"].items():
        for t, r in rows.items():
            err = "-" if r["error"] is None else f"{r['error']:.4f}"
            lines.append(f"| {float(t):g} | {POPULATION_WORDS.get(pop, pop)} | "
                         f"{r['answered']:,} ({100 * r['coverage']:.1f}%) | {r['wrong']} | "
                         f"{err} [{r['error_ci'][0]:.4f}, {r['error_ci'][1]:.4f}] |")
    for t, r in doc["selective_lfw_rule_on_lookalike"].items():
        err = "-" if r["error"] is None else f"{r['error']:.4f}"
        lines.append(f"| {float(t):g} | look-alike pairs, **LFW's rule** (out of its scope) | "
                     f"{r['answered']:,} ({100 * r['coverage']:.1f}%) | {r['wrong']} | {err} |")
    for t, by_pop in doc.get("selective_default", {}).items():
        for pop, r in by_pop.items():
            err = "-" if r["error"] is None else f"{r['error']:.4f}"
            lines.append(f"| {float(t):g} | {POPULATION_WORDS.get(pop, pop)}, **default rule** "
                         f"(stricter of LFW's and the look-alikes', both fitted on the other "
                         f"folds) | {r['answered']:,} ({100 * r['coverage']:.1f}%) | {r['wrong']} "
                         f"| {err} [{r['error_ci'][0]:.4f}, {r['error_ci'][1]:.4f}] |")
    return "\n".join(lines)


def plot_reliability(doc: dict[str, Any], path: Path) -> Path:
    """One panel per population: accuracy against confidence per bin, per calibrator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pops = list(doc["heldout"][doc["chosen"]])
    fig, axes = plt.subplots(1, len(pops), figsize=(4.2 * len(pops), 4), dpi=110, sharey=True)
    for ax, pop in zip(axes, pops, strict=True):
        ax.plot([0.5, 1], [0.5, 1], color="grey", lw=0.8, ls=":")
        for kind, by_pop in doc["heldout"].items():
            rel = by_pop[pop]["reliability"]
            ax.plot(rel["confidence"], rel["accuracy"], "o-", ms=3,
                    label=f"{kind} (ECE {by_pop[pop]['ece']:.3f})")
        ax.set_title(f"{POPULATION_WORDS.get(pop, pop)}, n={doc['populations'][pop]['n_pairs']}",
                     fontsize=9)
        ax.set_xlabel("confidence of the verdict")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("share of verdicts that are right")
    fig.suptitle(f"{doc['backbone']}: held-out reliability (fitted on LFW's other folds)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@dataclass
class CalibrationResult:
    """A ``benchmark calibration`` result, typed: the kept calibrator, the held-out quality
    per calibrator and population, the selective rules; the rest of its JSON in ``doc``."""

    backbone: str
    chosen: str
    heldout: dict[str, dict[str, dict[str, Any]]]
    selective_heldout: dict[str, dict[str, dict[str, Any]]]
    doc: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CalibrationResult:
        return cls(backbone=str(doc["backbone"]), chosen=str(doc["chosen"]),
                   heldout=doc["heldout"], selective_heldout=doc["selective_heldout"], doc=doc)

    def to_json(self) -> dict[str, Any]:
        return {**self.doc, "backbone": self.backbone, "chosen": self.chosen,
                "heldout": self.heldout, "selective_heldout": self.selective_heldout}

    def table(self) -> str:
        return calibration_table(self.to_json())

    def selective_table(self) -> str:
        return selective_table(self.to_json())

    def figure(self, path: Path) -> Path:
        return plot_reliability(self.to_json(), path)
