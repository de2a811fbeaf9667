"""The faithfulness ranking's markdown table, from the stored ranks alone (torch-free: the docs
table regenerates from a result file's ``ranking`` and ``protocols``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KINDS = ("difference", "similarity")


def ranking_columns(ranking: Mapping[str, Mapping[str, Any]],
                    protocols: Sequence[str]) -> list[tuple[str, str]]:
    """(curve id, kind) of every family some row was ranked on, in protocol order."""
    seen = {key for r in ranking.values() for key in r["ranks"]}
    return [(cid, kind) for cid in protocols for kind in KINDS if f"{cid}/{kind}" in seen]


def ranking_table(ranking: Mapping[str, Mapping[str, Any]], protocols: Sequence[str],
                  cols: Sequence[tuple[str, str]] | None = None) -> str:
    """The docs table: gain over random (and rank) per family, mean rank, overall place.
    ``ranking``: row -> its ``RowRank`` as a dict (ranks, gains, mean_rank, place, same_as)."""
    cols = list(cols) if cols is not None else ranking_columns(ranking, protocols)
    head = ["map", *(f"{cid} {'imp' if kind == 'difference' else 'gen'}" for cid, kind in cols),
            "mean rank", "place"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    shown: set[str] = set()
    for r in sorted(ranking, key=lambda r: ranking[r]["place"] or 999):
        t = ranking[r]
        if r in shown:
            continue
        shown.update([r, *t.get("same_as", [])])
        cells = []
        for cid, kind in cols:
            key = f"{cid}/{kind}"
            gain = t["gains"].get(key)
            cells.append("–" if gain is None else f"{gain:+.3f} ({t['ranks'][key]})")
        name = " = ".join([r, *t.get("same_as", [])])
        name = f"**{name}**" if t["place"] == 1 else name
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {t['mean_rank']} | {t['place']} |")
    return "\n".join(lines)


def deletion_table(doc: Mapping[str, Any]) -> str:
    """Issue 3's deletion table of a one-protocol faithfulness run (``rows`` with ``kind``
    difference / similarity): per map the mean AUC ± 1.96 standard errors and the gain over its
    random order, maps with identical numbers merged, then the two random orders."""
    block = int(doc.get("block", 1))
    unit = "per-pixel" if block == 1 else f"{block}x{block}-block"
    lines = [f"| {doc['backbone']}, {unit} deletion | impostors: difference AUC ↑ (± 95%) | gain "
             "| genuine: similarity AUC ↓ (± 95%) | gain |", "|---|---|---|---|---|"]
    by: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in doc["rows"]:
        by.setdefault(r["method"], {})[r["kind"]] = r

    def cells(method: str) -> tuple[str, ...]:
        out: list[str] = []
        for kind in KINDS:
            r = by[method].get(kind)
            out += (["–", ""] if r is None else
                    [f"{r['auc_mean']:.4f} ± {1.96 * r['auc_sem']:.4f}", f"{r['gain']:+.3f}"])
        return tuple(out)

    groups: dict[tuple[str, ...], list[str]] = {}
    for method in by:
        groups.setdefault(cells(method), []).append(method)
    for row, methods in groups.items():
        lines.append(f"| {' = '.join(methods)} | " + " | ".join(row) + " |")
    rnd = doc["random"]
    lines.append("| random (shared / per face) | " + " | | ".join(
        " / ".join(f"{rnd[kind][b]['auc_mean']:.4f}" for b in ("random-shared", "random-per-face"))
        for kind in KINDS) + " | |")
    return "\n".join(lines)
