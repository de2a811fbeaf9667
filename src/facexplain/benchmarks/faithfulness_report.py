"""Tables, figures and stored ranks of a faithfulness run (``benchmarks.faithfulness``).

The ranking is what a reader needs from eight curve families (deletion / insertion, single
pixels / 8x8 blocks, impostor difference maps / genuine similarity maps): per family, rows are
ordered by their gain over the random order of their own structure; the mean of those ranks is
the overall standing, stored per backbone so the report can say where a map stands.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from facexplain.benchmarks.faithfulness import BASELINES, FaithfulnessResult
from facexplain.benchmarks.faithfulness_ranks import ranking_table
from facexplain.metrics.faithfulness import higher_is_better

KIND_WORDS = {"difference": "impostors, difference map", "similarity": "genuine, similarity map"}


def columns(result: FaithfulnessResult) -> list[tuple[str, str]]:
    """(curve id, kind) of every family present, in protocol order."""
    return [(cid, kind) for cid in result.protocols
            for kind in ("difference", "similarity") if kind in result.curves.get(cid, {})]


@dataclass
class RowRank:
    """Where one map stands: rank per family (1 = largest gain over random; equal gains share
    a rank), the gain itself, the mean rank and the overall place by mean rank."""

    ranks: dict[str, int] = field(default_factory=dict)
    gains: dict[str, float] = field(default_factory=dict)
    mean_rank: float | None = None
    place: int | None = None
    of: int | None = None
    same_as: list[str] = field(default_factory=list)  # rows with the very same curves

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ranks(result: FaithfulnessResult) -> dict[str, RowRank]:
    """Every row's ``RowRank`` over the families of ``result``. Rows with identical curves are
    one entry (ranked once, the others counted once), each listing its twins."""
    by = {(s.method, s.protocol, s.kind): s for s in result.rows}
    rows = result.row_names
    twins = identical_rows(result, rows)
    table = {r: RowRank() for r in rows}
    for cid, kind in columns(result):
        gains = {r: by[(r, cid, kind)].gain for r in twins if (r, cid, kind) in by}
        for r, g in gains.items():
            table[r].ranks[f"{cid}/{kind}"] = 1 + sum(o > g + 1e-12 for o in gains.values())
            table[r].gains[f"{cid}/{kind}"] = round(g, 5)
    for t in table.values():
        if t.ranks:
            t.mean_rank = round(float(np.mean(list(t.ranks.values()))), 2)
    standing = sorted((r for r in twins if table[r].mean_rank is not None),
                      key=lambda r: table[r].mean_rank or 0.0)
    for r in standing:
        mean = table[r].mean_rank or 0.0
        table[r].place = 1 + sum((table[o].mean_rank or 0.0) < mean for o in standing)
        table[r].of = len(standing)
        for member in twins[r]:
            table[member] = RowRank(dict(table[r].ranks), dict(table[r].gains),
                                    table[r].mean_rank, table[r].place, table[r].of)
        for member in (r, *twins[r]):
            table[member].same_as = [m for m in (r, *twins[r]) if m != member]
    return table


def identical_rows(result: FaithfulnessResult, rows: list[str]) -> dict[str, list[str]]:
    """First row of each group of rows whose curves are the same on every pair and family
    (saliency, deconv and guided on a network without ReLU) -> the other rows of its group."""
    def curves(r: str) -> list[np.ndarray]:
        return [by_kind[r] for by_cid in result.curves.values() for by_kind in by_cid.values()
                if r in by_kind]

    groups: dict[str, list[str]] = {}
    for r in rows:
        mine = curves(r)
        lead = next((g for g in groups if mine and len(curves(g)) == len(mine) and all(
            a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=1e-9)
            for a, b in zip(curves(g), mine, strict=True))), None)
        if lead is None:
            groups[r] = []
        else:
            groups[lead].append(r)
    return groups


def ranking_markdown(result: FaithfulnessResult) -> str:
    """The docs table: gain over random (and rank) per family, mean rank, overall place."""
    table = {r: t.to_dict() for r, t in ranks(result).items()}
    return ranking_table(table, result.protocols, columns(result))


def format_table(result: FaithfulnessResult) -> str:
    """Plain text for the terminal: per family the AUC, gain and win rate of each row."""
    lines = []
    random = result.summary["random"]
    assert isinstance(random, dict)
    for cid, kind in columns(result):
        better = "↑" if higher_is_better(kind, cid.split("-")[0]) else "↓"
        head = f"{cid}, {KIND_WORDS[kind]} (AUC {better})"
        lines += ["", head, f"{'map':<22}{'AUC':>9}{'gain':>9}{'>rnd':>6}", "-" * 46]
        for s in result.rows:
            if s.protocol == cid and s.kind == kind:
                lines.append(f"{s.method:<22}{s.auc_mean:>9.4f}{s.gain:>+9.4f}"
                             f"{100 * s.better_than_random:>5.0f}%")
        for b in BASELINES:
            lines.append(f"{b:<22}{random[cid][kind][b]['auc_mean']:>9.4f}")
    secs = result.seconds_per_pair
    lines += ["", "seconds per pair: " + ", ".join(f"{m} {v}" for m, v in secs.items()),
              "", ranking_markdown(result)]
    return "\n".join(lines)


def plot_curves(result: FaithfulnessResult, path: Path) -> Path:
    """Mean curves: one panel per family (rows: protocols; columns: impostor / genuine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = np.asarray(result.summary["fractions"], dtype=np.float64) * 100
    protocols = result.protocols
    fig, axes = plt.subplots(len(protocols), 2, figsize=(11, 3.6 * len(protocols)), dpi=110,
                             squeeze=False)
    tab20 = plt.get_cmap("tab20")
    colors = [tab20(i / 19) for i in range(20)]  # 14+ rows: distinct colours
    rows = result.row_names
    for i, cid in enumerate(protocols):
        mode = cid.split("-")[0]
        for j, kind in enumerate(("difference", "similarity")):
            ax = axes[i][j]
            by_row = result.curves.get(cid, {}).get(kind, {})
            for k, row in enumerate(rows):
                if row in by_row:
                    style = ":" if row.endswith("-abs") else "-"
                    ax.plot(fractions, by_row[row].mean(axis=0), style,
                            color=colors[k % len(colors)], label=row)
            n = 0
            for b, style in zip(BASELINES, ("--", "-."), strict=True):
                if b in by_row:
                    ax.plot(fractions, by_row[b].mean(axis=0), style, color="k", label=b)
                    n = by_row[b].shape[0]
            arrow = "↑" if higher_is_better(kind, mode) else "↓"
            ax.set_title(f"{cid}: {KIND_WORDS[kind]} (AUC {arrow} better, n={n})", fontsize=8)
            ax.set_xlabel(f"pixels {'removed' if mode == 'deletion' else 'restored'} per face (%)")
            ax.set_ylabel("cosine similarity")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=5, ncol=2)
    fig.suptitle(f"{result.summary['backbone']}: faithfulness curves, fill "
                 f"{result.summary['fill']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
