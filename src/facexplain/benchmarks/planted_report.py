"""The planted-difference game's table and its picture of a few altered pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the game's set loads torch; its table must not
    from facexplain.benchmarks.planted_pairs import PlantedSet


def _cell(c: dict[str, Any] | None, key: str) -> str:
    if not c or key not in c:
        return "-"
    v = c[key]
    return f"{v['mean']:.2f} [{v['ci'][0]:.2f}, {v['ci'][1]:.2f}]"


def planted_table(doc: dict[str, Any]) -> str:
    """Markdown: per map, on altered pairs share in region, pointing, AUC, which face; on the
    same-person control the share in region and the in-region mean relative to altered."""
    lines = [f"| {doc['backbone']} map | share in region | pointing game | AUC | which face | "
             "same-person control: share | control: which face | control peak / altered peak "
             "| s/pair |", "|---|---|---|---|---|---|---|---|---|"]
    for row, cells in doc["rows"].items():
        alt, ctl = cells.get("altered"), cells.get("same-person")
        ratio = "-"
        if alt and ctl and alt["peak"]["mean"] > 1e-12:
            ratio = f"{ctl['peak']['mean'] / alt['peak']['mean']:.2f}"
        lines.append(f"| {row} | {_cell(alt, 'share')} | {_cell(alt, 'pointing')} | "
                     f"{_cell(alt, 'auc')} | {_cell(alt, 'which')} | {_cell(ctl, 'share')} | "
                     f"{_cell(ctl, 'which')} | {ratio} | {cells.get('seconds_per_pair') or '-'} |")
    area = doc.get("region_area_share")
    if area is not None:
        lines.append(f"| uniform map (chance) | {area:.2f} | {area:.2f} | 0.50 | 0.50 | "
                     f"{area:.2f} | 0.50 | 1.00 | 0 |")
    return "\n".join(lines)


SHAPE_WORDS = {"landmark": "landmark-shaped", "box": "box/ellipse, before alignment"}


def components_table(docs: list[dict[str, Any]]) -> str:
    """Markdown, one row per result file and component method: on altered pairs top-1 and
    top-2 over the four planted components (chance 0.25 and 0.5) and top-1 over all seven;
    pairs with at least one "differs" on the genuine controls (false findings) and on
    held-out impostor pairs; seconds per pair."""
    lines = ["| backbone | planted set | method | altered pairs | top-1 of 4 | top-2 of 4 | "
             "top-1 of 7 | planted component \"differs\" | false findings: same-person | "
             "false findings: untouched | impostors with a finding | s/pair |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for doc in docs:
        for method, c in doc.get("components", {}).items():
            alt = c.get("altered", {})
            n = alt["top1"]["n"] if "top1" in alt else 0

            def finding(kind: str, cell: dict[str, Any] = c) -> str:
                got = cell.get(kind, {}).get("any_differs")
                return "-" if got is None else f"{_cell(cell[kind], 'any_differs')} (n={got['n']})"

            shape = SHAPE_WORDS.get(doc.get("shape", "landmark"), str(doc.get("shape")))
            lines.append(f"| {doc['backbone']} | {shape} | {method} | {n} | "
                         f"{_cell(alt, 'top1')} | {_cell(alt, 'top2')} | "
                         f"{_cell(alt, 'top1_all')} | {_cell(alt, 'planted_differs')} | "
                         f"{finding('same-person')} | {finding('untouched')} | "
                         f"{finding('impostor')} | {c.get('seconds_per_pair') or '-'} |")
    lines.append("| chance | | | | 0.25 | 0.50 | 0.14 | | | | | |")
    return "\n".join(lines)


@dataclass
class PlantedResult:
    """A ``benchmark planted`` result, typed: per map row, its scores on altered pairs and on
    the same-person controls (mean and CI); the rest of its JSON in ``doc``."""

    backbone: str
    rows: dict[str, dict[str, Any]]
    pairs: dict[str, int]
    mean_drop: float
    seconds: float
    doc: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PlantedResult:
        return cls(backbone=str(doc["backbone"]), rows=doc["rows"], pairs=dict(doc["pairs"]),
                   mean_drop=float(doc["mean_drop"]), seconds=float(doc["seconds"]), doc=doc)

    def to_json(self) -> dict[str, Any]:
        return {**self.doc, "backbone": self.backbone, "rows": self.rows, "pairs": self.pairs,
                "mean_drop": self.mean_drop, "seconds": self.seconds}

    def table(self) -> str:
        """The maps' table, then the component findings' where a method gave them."""
        doc = self.to_json()
        parts = [planted_table(doc)] if self.rows else []
        if doc.get("components"):
            parts.append(components_table([doc]))
        return "\n\n".join(parts)


def region_area_share(game: PlantedSet) -> float:
    """Mean share of the face crop the altered regions cover (a uniform map's score)."""
    alt = [i for i, p in enumerate(game.pairs) if p.kind == "altered"]
    return float(np.mean([game.masks[i].mean() for i in alt]))


def plot_examples(game: PlantedSet, maps: list[dict[str, np.ndarray]], indices: list[int],
                  path: Path) -> Path:
    """Rows: altered pairs; columns: the two faces (region outlined on the altered one), then
    each map on the altered face."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(maps[0])
    fig, axes = plt.subplots(len(indices), 2 + len(names),
                             figsize=(1.6 * max(2 + len(names), 5), 1.8 * len(indices)),
                             dpi=100, squeeze=False)
    for r, (i, m) in enumerate(zip(indices, maps, strict=True)):
        p = game.pairs[i]
        for c in (0, 1):
            ax = axes[r, c]
            ax.imshow(game.faces[i, c].transpose(1, 2, 0))
            if c == p.face:
                ax.contour(game.masks[i], levels=[0.5], colors="yellow", linewidths=0.8)
            ax.set_title(f"{'AB'[c]}{' (altered)' if c == p.face else ''}", fontsize=7)
        for k, name in enumerate(names):
            ax = axes[r, 2 + k]
            v = m[name][p.face]
            ax.imshow(game.faces[i, p.face].mean(axis=0), cmap="gray")
            ax.imshow(np.clip(v, 0, None), cmap="jet", alpha=0.55)
            ax.contour(game.masks[i], levels=[0.5], colors="white", linewidths=0.6)
            if r == 0:
                ax.set_title(name, fontsize=6)
        axes[r, 0].set_ylabel(f"{p.region}, drop {p.drop:.2f}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Planted differences: one region of one face replaced by a look-alike's "
                 "(outlined); each map on the altered face", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
