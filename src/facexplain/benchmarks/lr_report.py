"""The table and the Tippett / ECE plots of a ``benchmark lr`` result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

WORDS = {"lfw": "LFW folds", "lookalike": "look-alike pairs"}


def _ci(q: dict[str, Any], name: str) -> str:
    lo, hi = q[f"{name}_ci"]
    return f"{q[name]:.4f} [{lo:.4f}, {hi:.4f}]"


def lr_table(doc: dict[str, Any]) -> str:
    """Markdown: held-out Cllr, Cllr_min, Cllr_cal and EER per fitting and test population."""
    lines = [f"| {doc['backbone']}: LR fitted on | tested on | calibrator | Cllr [95% CI] | "
             "Cllr_min [95% CI] | Cllr_cal [95% CI] | EER [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for fit_name, by_kind in doc["heldout"].items():
        for kind, by_test in by_kind.items():
            mark = " (kept)" if doc["chosen"][fit_name] == kind else ""
            for test, q in by_test.items():
                lines.append(f"| {WORDS.get(fit_name, fit_name)} | {WORDS.get(test, test)} "
                             f"({q['n_pairs']:,}) | {kind}{mark} | {_ci(q, 'cllr')} | "
                             f"{_ci(q, 'cllr_min')} | {_ci(q, 'cllr_cal')} | {_ci(q, 'eer')} |")
    return "\n".join(lines)


def plot_lr(doc: dict[str, Any], kept: dict[str, dict[str, np.ndarray]],
            labels: dict[str, np.ndarray], path: Path) -> Path:
    """Tippett plots (top) and empirical cross-entropy plots (bottom) of the kept calibrator
    of each population, on that population's held-out LRs (``lir.plotting``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lir.data.models import LLRData
    from lir.plotting import tippett
    from lir.plotting.expected_calibration_error import plot_ece

    pops = list(kept)
    fig, axes = plt.subplots(2, len(pops), figsize=(5 * len(pops), 8), dpi=100, squeeze=False)
    for col, pop in enumerate(pops):
        data = LLRData(features=kept[pop][pop], labels=labels[pop].astype(int))
        tippett(data, ax=axes[0][col])
        axes[0][col].set_title(f"{doc['backbone']}, {WORDS.get(pop, pop)}: Tippett "
                               f"({doc['chosen'][pop]}, held out)", fontsize=9)
        plot_ece(data, ax=axes[1][col])
        q = doc["heldout"][pop][doc["chosen"][pop]][pop]
        axes[1][col].set_title(f"ECE: Cllr {q['cllr']:.3f}, Cllr_min {q['cllr_min']:.3f}",
                               fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@dataclass
class LrResult:
    """A ``benchmark lr`` result, typed: held-out quality per (fit, test, calibrator), the
    kept calibrators and their ELUB bounds."""

    backbone: str
    heldout: dict[str, dict[str, dict[str, dict[str, Any]]]]
    chosen: dict[str, str]
    bounds: dict[str, list[float]]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LrResult:
        known = {"backbone", "heldout", "chosen", "bounds"}
        return cls(doc["backbone"], doc["heldout"], doc["chosen"], doc["bounds"],
                   {k: v for k, v in doc.items() if k not in known})

    def to_json(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "heldout": self.heldout, "chosen": self.chosen,
                "bounds": self.bounds, **self.extra}

    def table(self) -> str:
        return lr_table(self.to_json())
