"""The study's figures, drawn like the paper's: Fig. 8 bars, Fig. 9 scatter, Fig. 10 ROC."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from facexplain.study.results import ConditionResult, ParticipantResult


def axis_range(values: Iterable[float], low: float, margin: float = 0.05) -> tuple[float, float]:
    """Accuracy axis that shows every value: from ``low`` (the paper's look) or lower, in steps
    of 0.1, to a little above 1 (points at 100% stay whole). Fixed limits hid a 37.5% scorer."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return low, 1.02
    least = min(finite)
    lo = min(low, math.floor((least - margin) * 10) / 10)
    if least >= 0:
        lo = max(lo, -margin)  # a 0% point sits just inside the frame
    return lo, max(1.0, *finite) + 0.02


def draw_fig8(table: Sequence[ConditionResult], model_acc: float) -> Figure:
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
    ax.set_xticks(x, [f"{c.condition}\nn={c.n}" for c in table])
    ax.set_ylabel("accuracy")
    ends = [m + k * sd for c in table for m, sd in ((c.before_mean, c.before_std),
                                                     (c.after_mean, c.after_std))
            for k in (-1, 0, 1) if math.isfinite(m) and (k == 0 or math.isfinite(sd))]
    ax.set_ylim(*axis_range([*ends, model_acc], 0.5))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Fig. 8: accuracy per condition (mean ± std, kept participants)", fontsize=10)
    fig.tight_layout()
    return fig


def fig8_bars(table: Sequence[ConditionResult], model_acc: float, path: Path) -> Path:
    return _save(draw_fig8(table, model_acc), path)


def draw_fig9(people: Sequence[ParticipantResult], conditions: Sequence[str]) -> Figure:
    """Each finished participant's accuracy after vs before (above the diagonal = helped):
    kept ones as blue circles, screened-out ones as grey crosses; the same axes in every panel,
    wide enough for everyone."""
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.2 * len(conditions), 3.3),
                             squeeze=False)
    shown = [p for p in people if p.finished]
    lo, hi = axis_range([a for p in shown for a in p.accuracy], 0.4)
    for ax, cond in zip(axes[0], conditions, strict=True):
        for kept, style in ((True, {"facecolors": "none", "edgecolors": "#1f5fa8"}),
                            (False, {"color": "#999", "marker": "x"})):
            pts = [p.accuracy for p in shown if p.condition == cond and p.kept == kept]
            if pts:
                b, a = zip(*pts, strict=True)
                ax.scatter(b, a, s=18, label="kept" if kept else "screened out", **style)
        ax.plot([lo, hi], [lo, hi], color="#888", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_title(cond, fontsize=10)
        ax.set_xlabel("before")
    axes[0][0].set_ylabel("after")
    if any(not p.kept for p in shown):
        axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Fig. 9: each participant, before vs after", fontsize=10)
    fig.tight_layout()
    return fig


def fig9_scatter(people: Sequence[ParticipantResult], conditions: Sequence[str],
                 path: Path) -> Path:
    return _save(draw_fig9(people, conditions), path)


def _save(fig: Figure, path: Path) -> Path:
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
