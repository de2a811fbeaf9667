"""Trust signals beside each map: the stored sanity verdict of a method on a backbone.

Why: an examiner reading a map should see, next to it, whether that method's maps track the
model at all (``benchmark sanity``), with the date and the command that measured it. The
verdicts are records: packaged defaults in ``explain/data/sanity.json``, a user's runs with
``--write-record`` under the model home override them.
"""

from __future__ import annotations

from pathlib import Path

from facexplain.explain.fills import data_dir
from facexplain.records import RecordStore, store_for

SANITY_RECORDS = "sanity.json"


def sanity_store(path: Path | None = None) -> RecordStore:
    """Stored sanity verdicts (``<backbone>:<method>``): packaged defaults, user runs override."""
    return store_for(SANITY_RECORDS, data_dir(), path)


def save_sanity_records(result: dict[str, object], path: Path | None = None) -> Path:
    """One record per method of ``result``: full-randomisation similarity, chance and verdict,
    with the command and date that measured them (what the report shows beside each map)."""
    store = sanity_store(path)
    written = store.user
    for row in result["rows"]:  # type: ignore[attr-defined]
        written = store.save(f"{result['backbone']}:{row['method']}", {
            "full": row["full"], "chance": row["chance"], "pass": row["pass"],
            "n_pairs": result["n_pairs"], "margin": result["margin"],
            "command": result.get("command", ""), "date": result["date"],
        })
    return written


def sanity_note(backbone: str, method: str) -> str:
    """One sentence for the report: this method's stored sanity verdict on this backbone."""
    row = sanity_store().get(f"{backbone}:{method}")
    if row is None:
        return (f" Sanity check: not run for {backbone} (`facexplain benchmark sanity "
                f"--backbone {backbone} --write-record`).")
    verdict = row["pass"]
    assert isinstance(verdict, dict)
    words = {"spearman_signed": "signed map", "spearman_abs": "magnitude",
             "ssim_abs": "magnitude (SSIM)"}
    failed = [words[m] for m, ok in verdict.items() if not ok]
    state = ("passed: with random weights the map falls to chance" if not failed else
             f"FAILED for the {', '.join(failed)}: with random weights the map stays close to "
             "this one, so it shows the image more than the model")
    return (f" Sanity check (model randomisation, {row['n_pairs']} LFW pairs, {row['date']}): "
            f"{state}.")
