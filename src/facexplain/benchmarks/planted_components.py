"""Component findings scored on the planted game: does a method name the planted component,
and does it call components "differs" where nothing was planted?

Why two rankings: the issue defines top-k over the four components a set plants (eyebrows,
eyes, nose, mouth; chance 0.25 for top-1), which asks "of the planted kinds, which one?". An
operator reads the whole table, so the same accuracy over all seven components (forehead,
cheeks and jaw can take the top rank too) is kept beside it. A planted component the method
calls "not assessable" is a miss in both. Per pair, a *false finding* is at least one
"differs" on a pair where nothing of another person was planted (same-person transplants,
untouched genuine pairs); on held-out impostor pairs the same count is the share of pairs an
operator is shown a difference on.
"""

from __future__ import annotations

from typing import Any

from facexplain.benchmarks.planted_metrics import bootstrap
from facexplain.types import COMPONENTS

COMPONENT_OF = {"eyes": "eyes", "brows": "eyebrows", "nose": "nose", "mouth": "mouth"}
PLANTED_COMPONENTS = tuple(c for c in COMPONENTS if c in COMPONENT_OF.values())
CONTROL_KINDS = ("same-person", "untouched")
FINDING_KINDS = ("altered", *CONTROL_KINDS, "impostor")


def ranked(findings: list[dict[str, Any]], among: tuple[str, ...] = COMPONENTS) -> list[str]:
    """The components of ``among`` strongest first: by the method's rank, assessable ones
    before those it could not assess (which keep the table's order)."""
    rows = [f for f in findings if f["component"] in among]
    return [f["component"] for f in sorted(
        rows, key=lambda f: (f.get("rank") is None or f["finding"] == "not assessable",
                             f.get("rank") or 0))]


def component_scores(findings: list[dict[str, Any]], region: str) -> dict[str, float]:
    """One pair's scores: top-1/top-2 over the four planted components and over all seven
    (altered pairs only, NaN elsewhere), whether the planted component "differs", and whether
    any component does."""
    differs = [f["component"] for f in findings if f["finding"] == "differs"]
    out = {"any_differs": float(bool(differs)), "n_differs": float(len(differs))}
    target = COMPONENT_OF.get(region)
    if target is None:
        return out
    assessable = {f["component"] for f in findings if f["finding"] != "not assessable"}
    hit = target in assessable
    four, seven = ranked(findings, PLANTED_COMPONENTS), ranked(findings)
    out.update(top1=float(hit and four[:1] == [target]), top2=float(hit and target in four[:2]),
               top1_all=float(hit and seven[:1] == [target]),
               top2_all=float(hit and target in seven[:2]),
               planted_differs=float(target in differs), planted_assessable=float(hit))
    return out


def _ci(values: list[float], n_boot: int) -> dict[str, Any]:
    mean, lo, hi = bootstrap(values, n_boot)
    return {"mean": round(mean, 4), "ci": [round(lo, 4), round(hi, 4)], "n": len(values)}


ALTERED_KEYS = ("top1", "top2", "top1_all", "top2_all", "planted_differs",
                "planted_assessable", "any_differs")


def summarise_components(records: list[dict[str, Any]], n_boot: int = 1000
                         ) -> dict[str, Any]:
    """Per method with component findings: each score's mean with its 95% bootstrap CI over
    pairs, per pair kind, the two genuine controls pooled, top-1 per planted region, and the
    seconds per pair."""
    methods = sorted({m for r in records for m in r.get("components", {})})
    out: dict[str, Any] = {}
    for method in methods:
        def scores(kinds: tuple[str, ...], m: str = method) -> list[dict[str, float]]:
            return [component_scores(r["components"][m], r["region"] if r["kind"] == "altered"
                                     else "") for r in records
                    if r["kind"] in kinds and m in r.get("components", {})]

        cell: dict[str, Any] = {}
        altered = scores(("altered",))
        if altered:
            cell["altered"] = {k: _ci([s[k] for s in altered], n_boot) for k in ALTERED_KEYS}
            regions = [r["region"] for r in records
                       if r["kind"] == "altered" and method in r.get("components", {})]
            cell["top1_by_region"] = {
                reg: _ci([s["top1"] for s, g in zip(altered, regions, strict=True) if g == reg],
                         n_boot) for reg in COMPONENT_OF if reg in regions}
        for kind in (*CONTROL_KINDS, "impostor"):
            got = scores((kind,))
            if got:
                cell[kind] = {"any_differs": _ci([s["any_differs"] for s in got], n_boot)}
        pooled = scores(CONTROL_KINDS)
        if pooled:
            cell["controls"] = {"any_differs": _ci([s["any_differs"] for s in pooled], n_boot)}
        seconds = [r["seconds"][method] for r in records if method in r.get("seconds", {})]
        cell["seconds_per_pair"] = round(sum(seconds) / len(seconds), 3) if seconds else None
        out[method] = cell
    return out
