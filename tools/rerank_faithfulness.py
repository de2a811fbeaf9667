"""Re-rank stored faithfulness records with identical maps as one entry.

Why: on sface (no ReLU) saliency, deconv and guided backprop give the same map, and the stored
ranking counted it three times ("1 of 14"). Rows whose gains over random are equal in every
curve family (the stored records keep no raw curves) are merged: ranked once, listed together,
and the other maps' ranks and the count ("of") no longer count the copies. Run:
.venv/bin/python tools/rerank_faithfulness.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parents[1] / "src/facexplain/explain/data/faithfulness.json"


def rerank(rows: dict[str, dict[str, object]]) -> None:
    groups: dict[str, list[str]] = {}
    for name, rec in rows.items():
        lead = next((g for g in groups if rows[g]["gains"] == rec["gains"]), None)
        groups.setdefault(lead or name, [])
        if lead is not None:
            groups[lead].append(name)
    families = list(next(iter(rows.values()))["gains"])  # type: ignore[call-overload]
    for fam in families:
        gains = {g: rows[g]["gains"][fam] for g in groups}  # type: ignore[index]
        for g, v in gains.items():
            rows[g]["ranks"][fam] = 1 + sum(o > v + 1e-12 for o in gains.values())  # type: ignore[index]
    for g in groups:
        rows[g]["mean_rank"] = round(float(np.mean(list(rows[g]["ranks"].values()))), 2)  # type: ignore[union-attr]
    for g in groups:
        place = 1 + sum(rows[o]["mean_rank"] < rows[g]["mean_rank"] for o in groups)  # type: ignore[operator]
        members = [g, *groups[g]]
        for m in members:
            rows[m].update(ranks=dict(rows[g]["ranks"]), mean_rank=rows[g]["mean_rank"],  # type: ignore[call-overload]
                           place=place, of=len(groups),
                           same_as=[o for o in members if o != m])


def main() -> None:
    records = json.loads(PATH.read_text())
    for backbone in sorted({k.split(":")[0] for k in records}):
        mine = {k.split(":", 1)[1]: v for k, v in records.items() if k.startswith(backbone + ":")}
        rerank(mine)
        for row, rec in mine.items():
            records[f"{backbone}:{row}"] = rec
        print(backbone, {r: (v["place"], v["of"]) for r, v in mine.items()})
    PATH.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
