"""A ``benchmark sanity`` result, typed: its JSON, its terminal table, its markdown table (the
one docs/BENCHMARKS.md shows) and its figure. Torch-free, so the docs tables regenerate from
``docs/results`` without loading a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEASURE_WORDS = {"spearman_signed": "signed map (Spearman)",
                 "spearman_abs": "magnitude (Spearman)", "ssim_abs": "magnitude (SSIM)"}


def _name(row: dict[str, Any]) -> str:
    return " = ".join([row["method"], *row.get("same_as", [])])


@dataclass
class SanityResult:
    """What ``run_sanity`` returns. ``rows``: one per group of identical maps, with the
    similarity per state and measure, the excess over chance with its CI and the verdict."""

    backbone: str
    n_pairs: int
    margin: float
    states: list[str]
    rows: list[dict[str, Any]]
    doc: dict[str, Any] = field(default_factory=dict)  # every other field, kept as written

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SanityResult:
        return cls(backbone=str(doc["backbone"]), n_pairs=int(doc["n_pairs"]),
                   margin=float(doc["margin"]), states=list(doc["states"]),
                   rows=list(doc["rows"]), doc=doc)

    def to_json(self) -> dict[str, Any]:
        return {**self.doc, "backbone": self.backbone, "n_pairs": self.n_pairs,
                "margin": self.margin, "states": self.states, "rows": self.rows}

    @property
    def measures(self) -> list[str]:
        """The similarity measures, in the order the run wrote them."""
        return list(self.rows[0]["verdict"]) if self.rows else []

    def text(self) -> str:
        """One line per method and measure: similarity per state, chance, excess over chance
        with its 95% CI, and the verdict (pass, FAIL or inconclusive)."""
        states = [s for s in self.states if s != "real"]
        width = 2 + max((len(_name(r)) for r in self.rows), default=6)
        head = f"{'method':<{width}}{'measure':<16}" + "".join(f"{s:>13}" for s in states)
        lines = [head + f"{'chance':>8}  {'excess [95% CI]':<24}verdict", "-" * (len(head) + 45)]
        for row in self.rows:
            for m in self.measures:
                cells = "".join(f"{row[s][m]:>13.3f}" for s in states)
                ex = row["excess"][m]
                ci = f"{ex['value']:+.3f} [{ex['ci'][0]:+.3f}, {ex['ci'][1]:+.3f}]"
                word = {"pass": "pass", "fail": "FAIL"}.get(row["verdict"][m], "inconclusive")
                lines.append(f"{_name(row):<{width}}{m:<16}{cells}{row['chance'][m]:>8.3f}  "
                             f"{ci:<24}{word}")
        return "\n".join(lines)

    def table(self) -> str:
        """The verdicts as a markdown table (docs/BENCHMARKS.md)."""
        measures = self.measures
        lines = [f"| {self.backbone} method | "
                 + " | ".join(MEASURE_WORDS.get(m, m) for m in measures) + " |",
                 "|---|" + "---|" * len(measures)]
        for row in self.rows:
            cells = []
            for m in measures:
                ex = row["excess"][m]
                cells.append(f"{row['verdict'][m]}: {ex['value']:+.2f} "
                             f"[{ex['ci'][0]:+.2f}, {ex['ci'][1]:+.2f}]")
            lines.append(f"| {_name(row)} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def figure(self, path: Path) -> Path:
        """Per measure, each method's excess over chance (fully randomised map vs real map)
        with its 95% CI and the margin; colours: pass, FAIL, inconclusive."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows, measures = self.rows, self.measures
        colour = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#f9a825"}
        fig, axes = plt.subplots(1, len(measures), figsize=(13, 0.5 * len(rows) + 1.6),
                                 dpi=110, sharey=True)
        for ax, measure in zip(axes, measures, strict=True):
            for y, row in enumerate(rows):
                ex = row["excess"][measure]
                ax.errorbar(ex["value"], y, xerr=[[ex["value"] - ex["ci"][0]],
                                                  [ex["ci"][1] - ex["value"]]], fmt="o",
                            capsize=3, color=colour[row["verdict"][measure]])
            ax.axvline(self.margin, color="grey", ls="--", lw=0.8)
            ax.axvline(0.0, color="grey", lw=0.5)
            ax.set_title(measure, fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.set_xlabel("excess over chance")
        axes[0].set_yticks(range(len(rows)), [_name(r) for r in rows], fontsize=7)
        axes[0].invert_yaxis()
        fig.suptitle(f"{self.backbone}: model randomisation, n={self.n_pairs} held-out pairs; "
                     "dashed = margin (pass left of it, with the whole 95% CI); green pass, "
                     "red FAIL, amber inconclusive", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        return path
