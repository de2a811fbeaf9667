"""One table of every explanation method on one backbone, drawn from the result files of the
benchmarks that measured them (nothing is measured here): the planted-difference game (share in
the planted region, pointing game, AUC, which face), deletion and insertion (gain over random,
impostor pairs, per pixel; and the place by mean rank over every deletion/insertion family among
the maps of one run, on the same pairs), the sanity check (weights randomised) and the cost per pair
(``bench/method_cost.py``). Each cell carries its 95% CI and the number of pairs; a method a
benchmark has not run on reads "not measured".

Inputs (docs/results/, for backbone B): planted-B.json and planted-new-B.json, faithfulness-all-B
.json and faithfulness-new-B.json, sanity-B.json, sanity-new-B.json and sanity-sampling-B.json,
method-cost-B.json. ``facexplain benchmark tables`` writes it into docs/BENCHMARKS.md (table kind
``method-table``); ``bench/method_table.py`` still writes docs/results/method-table-B.{json,md}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path("docs/results")
NOT_MEASURED = "not measured"


def _load(results: Path, *names: str) -> list[dict[str, Any]]:
    return [json.loads((results / n).read_text()) for n in names if (results / n).is_file()]


def _ci(cell: dict[str, Any], digits: int = 2) -> str:
    lo, hi = cell["ci"]
    return f"{cell['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def game_cells(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per map row: the altered pairs' share, pointing, AUC and which-face cells, and n."""
    out: dict[str, dict[str, str]] = {}
    for doc in docs:
        for row, kinds in doc["rows"].items():
            alt = kinds.get("altered")
            if not alt or row in out:
                continue
            which = alt.get("which")
            out[row] = {"share": _ci(alt["share"]), "pointing": _ci(alt["pointing"]),
                        "auc": _ci(alt["auc"]),
                        "which": (_ci(which) + (f" (n={which['n']})" if which.get("n") not in
                                                  (None, alt["n"]) else "")
                                  if which and row in doc["per_face_rows"] else "-"),
                        "game_n": str(alt["n"])}
    return out


def faithfulness_cells(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per map row: deletion and insertion gain over random (impostor pairs, difference map,
    per pixel), mean ± 1.96 standard errors over pairs."""
    out: dict[str, dict[str, str]] = {}
    for doc in docs:
        for s in doc["summaries"]:
            if s["kind"] != "difference" or s["protocol"] not in ("deletion-px", "insertion-px"):
                continue
            key = "deletion" if s["protocol"] == "deletion-px" else "insertion"
            half = 1.96 * s["gain_sem"]
            cells = out.setdefault(s["method"], {})
            if key not in cells:
                cells[key] = (f"{s['gain']:+.3f} [{s['gain'] - half:+.3f}, "
                              f"{s['gain'] + half:+.3f}]")
                cells["faith_n"] = str(s["n_pairs"])
    return out


def place_cells(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Per map row: its place by mean rank over every deletion/insertion family, among the maps
    of one run (same pairs); the run with the most maps counts first."""
    out: dict[str, str] = {}
    for doc in sorted(docs, key=lambda d: -len(d.get("ranking", {}))):
        for row, r in doc.get("ranking", {}).items():
            if r.get("place") is not None:
                out.setdefault(row, f"{r['place']} of {r['of']} (n={doc['n_pairs']})")
    return out


def sanity_cells(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Per method: pass when every measure passes, else the first FAIL or inconclusive measure
    with its excess over chance and CI."""
    from facexplain.explain.trust import budget_of

    out: dict[str, str] = {}
    for doc in docs:
        for row in doc["rows"]:
            names = [row["method"], *row.get("same_as", [])]
            verdicts = row["verdict"]
            bad = [(m, v) for m, v in verdicts.items() if v != "pass"]
            if not bad:
                text = f"pass ({len(verdicts)}/{len(verdicts)}, n={doc['n_pairs']})"
            else:
                m, v = next(((m, v) for m, v in bad if v == "fail"), bad[0])
                ex = row["excess"][m]
                text = (f"{v.upper() if v == 'fail' else v} {m} {ex['value']:+.2f} "
                        f"[{ex['ci'][0]:+.2f}, {ex['ci'][1]:+.2f}] (n={doc['n_pairs']})")
            for name in names:
                budget = budget_of(name, doc.get("options"))
                out.setdefault(name, text + (f", maps at {budget}" if budget else ""))
    return out


def cost_cells(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for doc in docs:
        for name, row in doc["methods"].items():
            out.setdefault(name, {"seconds": f"{row['seconds_median']:.2f}",
                                  "images": str(row["forward_images_median"]),
                                  "ratio": (f"{row['ratio_to_occlusion']:.2f}"
                                            if row["ratio_to_occlusion"] is not None else "-")})
    return out


def source_names(backbone: str) -> dict[str, tuple[str, ...]]:
    """The result files (under the results folder) each column group reads, in order."""
    return {"game": (f"planted-{backbone}.json", f"planted-new-{backbone}.json"),
            "faithfulness": (f"faithfulness-all-{backbone}.json",
                             f"faithfulness-new-{backbone}.json"),
            "sanity": (f"sanity-{backbone}.json", f"sanity-new-{backbone}.json",
                       f"sanity-sampling-{backbone}.json"),
            "cost": (f"method-cost-{backbone}.json",)}


def build(backbone: str, results: Path = RESULTS) -> dict[str, Any]:
    """Every registered map's row, from the result files under ``results``."""
    names = source_names(backbone)
    return build_from({group: _load(results, *files) for group, files in names.items()},
                      backbone, sorted(p.name for p in results.glob(f"*-{backbone}.json")
                                       if p.name.startswith(("planted-", "faithfulness-",
                                                             "sanity-", "method-cost-"))))


def build_from(docs: dict[str, list[dict[str, Any]]], backbone: str,
               sources: list[str] | None = None) -> dict[str, Any]:
    """The table from the parsed result files of each column group (``source_names``)."""
    from facexplain.methods.registry import all_methods

    game = game_cells(docs.get("game", []))
    faith_docs = docs.get("faithfulness", [])
    faith = faithfulness_cells(faith_docs)
    places = place_cells(faith_docs)
    sanity = sanity_cells(docs.get("sanity", []))
    cost = cost_cells(docs.get("cost", []))
    maps = [(name, info.in_all, ranking.row(name)) for name, info in all_methods().items()
            for ranking in info.rankings]
    registered = {row for _, _, row in maps}
    # rows the game derives from other maps (occlusion-shapley: from the two occlusions)
    maps += [("derived", True, row) for row in game if row not in registered]
    rows = []
    for name, in_all, row in maps:
        g, f, c = game.get(row, {}), faith.get(row, {}), cost.get(name, {})
        rows.append({"method": name, "map": row, "in_all": in_all,
                     **{k: g.get(k, NOT_MEASURED) for k in
                        ("share", "pointing", "auc", "which", "game_n")},
                     **{k: f.get(k, NOT_MEASURED) for k in ("deletion", "insertion", "faith_n")},
                     "faith_place": places.get(row, NOT_MEASURED),
                     "sanity": sanity.get(name, NOT_MEASURED),
                     **{k: c.get(k, NOT_MEASURED) for k in ("seconds", "images", "ratio")}})
    return {"backbone": backbone, "rows": rows, "sources": sources or []}


def markdown(doc: dict[str, Any]) -> str:
    head = ("| map | game: share in region | pointing | AUC | which face | pairs | deletion "
            "gain | insertion gain | pairs | place in deletion/insertion | sanity | s/pair | "
            "images/pair | x occlusion |")
    lines = [head, "|" + "---|" * 14]
    for r in doc["rows"]:
        label = r["map"] if r["in_all"] else f"{r['map']} (not in all)"
        lines.append("| " + " | ".join([label, r["share"], r["pointing"], r["auc"], r["which"],
                                        r["game_n"], r["deletion"], r["insertion"],
                                        r["faith_n"], r["faith_place"], r["sanity"],
                                        r["seconds"], r["images"],
                                        r["ratio"]]) + " |")
    return "\n".join(lines) + "\n"
