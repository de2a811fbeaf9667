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
