"""The study's figures, drawn like the paper's: Fig. 8 bars, Fig. 9 scatter, Fig. 10 ROC."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from facexplain.study.analyze import ConditionResult, ParticipantResult


def fig8_bars(table: Sequence[ConditionResult], model_acc: float, path: Path) -> Path:
    """Mean accuracy before and after per condition, error bars one standard deviation."""
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(table), 3.6))
    x = np.arange(len(table))
    before = [c.before_mean for c in table]
    after = [c.after_mean for c in table]
    ax.bar(x - 0.2, before, 0.4, yerr=[c.before_std for c in table], capsize=4,
           label="before (alone)", color="#9aa9bd")
    ax.bar(x + 0.2, after, 0.4, yerr=[c.after_std for c in table], capsize=4,
           label="after (with help)", color="#1f5fa8")
    ax.axhline(model_acc, color="#a33", ls="--", lw=1, label=f"model {100 * model_acc:.1f}%")
    ax.set_xticks(x, [c.condition for c in table])
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.5, 1.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Fig. 8: accuracy per condition (mean ± std)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig9_scatter(people: Sequence[ParticipantResult], conditions: Sequence[str],
                 path: Path) -> Path:
    """Each participant's accuracy after vs before; above the diagonal = helped."""
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.2 * len(conditions), 3.3),
                             squeeze=False)
    for ax, cond in zip(axes[0], conditions, strict=True):
        pts = [p.accuracy for p in people if p.condition == cond]
        if pts:
            b, a = zip(*pts, strict=True)
            ax.scatter(b, a, s=18, facecolors="none", edgecolors="#1f5fa8")
        ax.plot([0.4, 1.0], [0.4, 1.0], color="#888", lw=0.8)
        ax.set_xlim(0.4, 1.0)
        ax.set_ylim(0.4, 1.0)
        ax.set_aspect("equal")
        ax.set_title(cond, fontsize=10)
        ax.set_xlabel("before")
    axes[0][0].set_ylabel("after")
    fig.suptitle("Fig. 9: each participant, before vs after", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig10_roc(people: Sequence[ParticipantResult], curves: dict[str, list[np.ndarray]],
              conditions: Sequence[str], path: Path) -> Path:
    """ROC of every participant from the full choices: before grey, after blue; mean AUC."""
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.2 * len(conditions), 3.4),
                             squeeze=False)
    for ax, cond in zip(axes[0], conditions, strict=True):
        group = [p for p in people if p.condition == cond]
        for p in group:
            for phase, color in ((1, "#b8b8b8"), (2, "#1f5fa8")):
                c = curves.get(f"{p.id}:{phase}")
                if c is not None:
                    ax.plot(c[0], c[1], color=color, lw=0.7, alpha=0.7)
        aucs = np.asarray([p.auc for p in group], dtype=float).reshape(-1, 2)
        with warnings.catch_warnings():  # a group with no finished participant: nan
            warnings.simplefilter("ignore", RuntimeWarning)
            mb, ma = (np.nanmean(aucs[:, 0]), np.nanmean(aucs[:, 1])) if len(aucs) else (0, 0)
        ax.plot([0, 1], [0, 1], color="#888", lw=0.6, ls=":")
        ax.set_title(f"{cond}: AUC {mb:.3f} -> {ma:.3f}", fontsize=9)
        ax.set_xlabel("false 'same' rate")
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("true 'same' rate")
    fig.suptitle("Fig. 10: ROC per participant (grey before, blue after)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
