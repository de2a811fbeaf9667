"""Trust signals beside each map: stored sanity verdicts and faithfulness ranks per backbone.

Why: an examiner reading a map should see, next to it, whether that method's maps track the
model at all (``benchmark sanity``) and how well its ranking predicts what changes the score
(``benchmark faithfulness``), with the date and the command that measured it. Both are
records: packaged defaults in ``explain/data/{sanity,faithfulness}.json``, a user's runs with
``--write-record`` under the model home override them.
"""

from __future__ import annotations

from pathlib import Path

from facexplain.explain.fills import data_dir
from facexplain.records import RecordStore, store_for

SANITY_RECORDS = "sanity.json"
FAITHFULNESS_RECORDS = "faithfulness.json"


def sanity_store(path: Path | None = None) -> RecordStore:
    """Stored sanity verdicts (``<backbone>:<method>``): packaged defaults, user runs override."""
    return store_for(SANITY_RECORDS, data_dir(), path)


def save_sanity_records(result: dict[str, object], path: Path | None = None) -> Path:
    """One record per method of ``result`` (methods whose maps were identical share a row):
    the excess over chance with its 95% CI, the verdict, the pairs, command and date."""
    store = sanity_store(path)
    written = store.user
    for row in result["rows"]:  # type: ignore[attr-defined]
        group = [row["method"], *row.get("same_as", [])]
        for name in group:
            written = store.save(f"{result['backbone']}:{name}", {
                "full": row["full"], "chance": row["chance"], "pass": row["pass"],
                "verdict": row.get("verdict"), "excess": row.get("excess"),
                "same_as": [m for m in group if m != name],
                "n_pairs": result["n_pairs"], "margin": result["margin"],
                "budget": budget_of(name, result.get("options")),
                "command": result.get("command", ""), "date": result["date"],
                "weights": result.get("weights"),
            })
    return written


def budget_of(method: str, options: object) -> str | None:
    """The sampling budget a sanity run gave ``method`` when it was not the method's default
    (a cheaper map is noisier; the report says which map the verdict is about)."""
    if not isinstance(options, dict):
        return None
    if method in ("corrrise", "rise", "lime") and options.get("samples") is not None:
        return f"{options['samples']} samples per face"
    if method == "xface-occlusion" and options.get("xface_stride") is not None:
        return f"occluder stride {options['xface_stride']}"
    return None


WORDS = {"spearman_signed": "signed map", "spearman_abs": "magnitude",
         "ssim_abs": "magnitude (SSIM)"}


def for_weights(row: dict[str, object] | None, weights: str | None
                 ) -> dict[str, object] | None:
    """A record counts only for the weights it was measured on (when they are known)."""
    if row is None or (weights is not None and row.get("weights") != weights):
        return None
    return row


def sanity_verdicts(row: dict[str, object]) -> dict[str, str]:
    """'pass' / 'fail' / 'inconclusive' per measure (old records: pass or fail only)."""
    verdicts = row.get("verdict")
    if isinstance(verdicts, dict):
        return {str(k): str(v) for k, v in verdicts.items()}
    passed = row["pass"]
    assert isinstance(passed, dict)
    return {str(k): "pass" if ok else "fail" for k, ok in passed.items()}


def sanity_note(backbone: str, method: str, weights: str | None = None) -> str:
    """One sentence for the report: this method's stored sanity verdict on this backbone."""
    stored = sanity_store().get(f"{backbone}:{method}")
    row = for_weights(stored, weights)
    if row is None:
        which = "these weights of " if stored is not None else ""
        return (f" Sanity check: not run for {which}{backbone} (`facexplain benchmark sanity "
                f"--backbone {backbone} --write-record`).")
    verdicts = sanity_verdicts(row)
    failed = [WORDS.get(m, m) for m, v in verdicts.items() if v == "fail"]
    unsure = [WORDS.get(m, m) for m, v in verdicts.items() if v == "inconclusive"]
    if failed:
        state = (f"FAILED for the {', '.join(failed)}: with random weights the map stays close "
                 "to this one, so it shows the image more than the model")
    elif unsure:
        state = (f"inconclusive for the {', '.join(unsure)} (the 95% interval of the excess "
                 "over chance straddles the margin)")
    else:
        state = "passed: with random weights the map falls to chance (95% intervals)"
    same = row.get("same_as")
    twin = (f"; its maps equal {', '.join(same)}'s on this backbone"  # type: ignore[arg-type]
            if same else "")
    budget = f", maps at {row['budget']}" if row.get("budget") else ""
    return (f" Sanity check (model randomisation, {row['n_pairs']} held-out LFW pairs"
            f"{budget}, {row['date']}): {state}{twin}.")


def faithfulness_store(path: Path | None = None) -> RecordStore:
    """Stored faithfulness ranks (``<backbone>:<row>``): packaged defaults, user runs override."""
    return store_for(FAITHFULNESS_RECORDS, data_dir(), path)


def save_faithfulness_records(result: dict[str, object], path: Path | None = None,
                              rows: set[str] | None = None) -> Path:
    """One record per ranked map of a faithfulness run (only the maps in ``rows`` when given):
    its place among all maps of the run, its rank in each curve family, with the run's size,
    command and date."""
    store = faithfulness_store(path)
    written = store.user
    ranking = result["ranking"]
    assert isinstance(ranking, dict)
    for row, r in ranking.items():
        if rows is not None and row not in rows:
            continue
        written = store.save(f"{result['backbone']}:{row}", {
            "place": r.get("place"), "of": r.get("of"), "mean_rank": r["mean_rank"],
            "ranks": r["ranks"], "gains": r["gains"], "n_pairs": result["n_pairs"],
            "command": result.get("command", ""), "date": result["date"],
            "weights": result.get("weights"),
        })
    return written


def faithfulness_note(backbone: str, method: str, rows: list[str],
                      weights: str | None = None) -> str:
    """One sentence for the report: where this method's ranked maps stand on this backbone."""
    store = faithfulness_store()
    found = [(row, for_weights(store.get(f"{backbone}:{row}"), weights)) for row in rows]
    parts = [f"{'this map' if row == method else row.removeprefix(method + '-') + ' map'} "
             f"{rec['place']} of {rec['of']}" for row, rec in found if rec and rec.get("place")]
    if not parts:
        which = "these weights of " if any(store.get(f"{backbone}:{r}") for r in rows) else ""
        return (f" Faithfulness: not measured for {which}{backbone} (`facexplain benchmark "
                f"faithfulness --backbone {backbone} --write-record`).")
    rec = next(r for _, r in found if r)
    return (f" Faithfulness (deletion and insertion, pixels and 8x8 blocks, {rec['n_pairs']} "
            f"held-out LFW pairs, {rec['date']}): ranked {', '.join(parts)} among all maps "
            "by mean rank (1 = best predicts what changes the similarity).")
