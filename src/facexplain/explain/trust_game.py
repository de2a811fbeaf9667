"""The planted-difference game's scores beside each map, and the per-method trust table.

Why: "which of these maps to believe" is answered by three measurements, each with its
interval and the pairs it was measured on: does the map find a known planted difference (the
game), does its ranking predict what changes the score (faithfulness), does it depend on the
model at all (sanity). The report shows the three as one small table per method; each comes
from a record measured on the same weights as the model being explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facexplain.explain.fills import data_dir
from facexplain.explain.trust import (
    faithfulness_store,
    for_weights,
    sanity_store,
    sanity_verdicts,
)
from facexplain.records import RecordStore, store_for

PLANTED_RECORDS = "planted.json"


def planted_store(path: Path | None = None) -> RecordStore:
    """Stored game scores (``<backbone>:<row>``): packaged defaults, user runs override."""
    return store_for(PLANTED_RECORDS, data_dir(), path)


def _altered_pairs(row: dict[str, object] | None) -> int:
    cell = row.get("altered") if row else None
    return int(cell.get("n", 0)) if isinstance(cell, dict) else 0


def _row_of_methods(row: str, methods: tuple[str, ...]) -> bool:
    """Whether a map row belongs to one of ``methods`` ('xface-occlusion (same)' to
    'xface-occlusion'; 'occlusion' is not 'occlusion-per-face')."""
    return any(row == m or row.startswith(f"{m} ") for m in methods)


def save_planted_records(doc: dict[str, object], path: Path | None = None,
                         methods: tuple[str, ...] | None = None) -> tuple[Path, list[str]]:
    """One record per map row of a game run: its altered-pair scores with CIs, the control's
    share, pair counts, command, date and weights. Only the rows of ``methods`` when given.

    A stored record on the same weights measured on more altered pairs is kept (a short run
    of new methods must not replace a 300-pair record); the rows kept so are returned."""
    store = planted_store(path)
    written = store.user
    rows = doc["rows"]
    assert isinstance(rows, dict)
    stored = store.load()
    kept = []
    for row, cells in rows.items():
        if methods is not None and not _row_of_methods(str(row), methods):
            continue
        key = f"{doc['backbone']}:{row}"
        old = for_weights(stored.get(key), str(doc.get("weights")) if doc.get("weights")
                          else None)
        if _altered_pairs(old) > _altered_pairs(cells):
            kept.append(str(row))
            continue
        written = store.save(key, {
            "altered": cells.get("altered"), "same_person": cells.get("same-person"),
            "seconds_per_pair": cells.get("seconds_per_pair"), "pairs": doc["pairs"],
            "region_area_share": doc.get("region_area_share"),
            "command": doc.get("command", ""), "date": doc["date"],
            "weights": doc.get("weights"),
        })
    return written, kept


@dataclass(frozen=True)
class TrustRow:
    """One line of a method's trust table."""

    measure: str
    value: str
    population: str


def _ci(cell: dict[str, object]) -> str:
    ci = cell["ci"]
    assert isinstance(ci, list)
    return f"{float(cell['mean']):.2f} [95% CI {ci[0]:.2f}-{ci[1]:.2f}]"  # type: ignore[arg-type]


def game_places(backbone: str, weights: str | None) -> dict[str, tuple[int, int]]:
    """Each map row's place among every row the game scored on these weights, by mean share of
    the map in the planted region (old and new methods alike; equal shares share a place)."""
    prefix = f"{backbone}:"
    shares = {}
    for key, row in planted_store().load().items():
        rec = for_weights(row, weights)
        alt = rec.get("altered") if rec and key.startswith(prefix) else None
        if isinstance(alt, dict):
            shares[key.removeprefix(prefix)] = round(float(alt["share"]["mean"]), 4)
    ordered = sorted(shares.values(), reverse=True)
    return {row: (ordered.index(v) + 1, len(ordered)) for row, v in shares.items()}


def trust_rows(backbone: str, method: str, rows: list[str], weights: str | None
               ) -> list[TrustRow]:
    """The game, faithfulness and sanity lines of one method on these weights."""
    out: list[TrustRow] = []
    places = game_places(backbone, weights)
    for row in rows:
        rec = for_weights(planted_store().get(f"{backbone}:{row}"), weights)
        alt = rec.get("altered") if rec else None
        if isinstance(alt, dict):
            label = "" if row == method else f" ({row.removeprefix(method + '-')} map)"
            pop = f"{alt['n']} planted LFW pairs, {rec['date']}"  # type: ignore[index]
            out.append(TrustRow(f"finds a planted difference{label}: share in region",
                                _ci(alt["share"]), pop))
            if row in places:
                place, of = places[row]
                out.append(TrustRow(f"game rank{label} (share in region, all maps)",
                                    f"{place} of {of}", pop))
            out.append(TrustRow(f"peak inside the planted region{label}",
                                _ci(alt["pointing"]), pop))
            if "which" in alt:
                out.append(TrustRow(f"names the altered photo{label}", _ci(alt["which"]), pop))
        faith = for_weights(faithfulness_store().get(f"{backbone}:{row}"), weights)
        if faith and faith.get("place"):
            out.append(TrustRow("faithfulness rank (deletion/insertion)",
                                f"{faith['place']} of {faith['of']}",
                                f"{faith['n_pairs']} held-out LFW pairs, {faith['date']}"))
    sanity = for_weights(sanity_store().get(f"{backbone}:{method}"), weights)
    if sanity:
        verdicts = sanity_verdicts(sanity)
        excess = sanity.get("excess") or {}
        parts = []
        for m, v in verdicts.items():
            ex = excess.get(m) if isinstance(excess, dict) else None
            ci = (f" ({ex['value']:+.2f} [{ex['ci'][0]:+.2f}, {ex['ci'][1]:+.2f}])"
                  if isinstance(ex, dict) else "")
            parts.append(f"{m} {v}{ci}")
        out.append(TrustRow("sanity (model randomisation)", "; ".join(parts),
                            f"{sanity['n_pairs']} held-out LFW pairs, {sanity['date']}"))
    return out


WHICH_FACE_BAR = 0.8  # the share of planted pairs a method must blame the right photo in
MIN_WHICH_PAIRS = 30  # fewer pairs (a bootstrap of 5 successes is [1, 1]): no claim


def which_face_verified(backbone: str, row: str, weights: str | None) -> tuple[bool, str]:
    """Whether the game showed this map names the altered photo (mean >= the bar), and a
    sentence for the report either way."""
    rec = for_weights(planted_store().get(f"{backbone}:{row}"), weights)
    alt = rec.get("altered") if rec else None
    which = alt.get("which") if isinstance(alt, dict) else None
    if not isinstance(which, dict):
        return False, (" Which photo carries the difference is not shown: it was not measured "
                       f"on planted pairs for these weights of {backbone} (`facexplain "
                       f"benchmark planted --backbone {backbone} --write-record`).")
    words = f"{_ci(which)} of {which['n']} planted LFW pairs"
    control = rec.get("same_person") if rec else None
    control_which = control.get("which") if isinstance(control, dict) else None
    if int(which["n"]) < MIN_WHICH_PAIRS:
        return False, (f" Which photo carries the difference is not shown: on planted pairs "
                       f"this map named the altered photo {words}, too few pairs to rely on "
                       f"(at least {MIN_WHICH_PAIRS}).")
    if isinstance(control_which, dict) and float(control_which["mean"]) >= WHICH_FACE_BAR:
        return False, (f" Which photo carries the difference is not shown: this map named the "
                       f"altered photo {words}, but as often the photo given a region of the "
                       f"same person ({_ci(control_which)}): it finds the edit, not the "
                       "other person.")
    if float(which["mean"]) >= WHICH_FACE_BAR:
        return True, f" On planted pairs this map named the altered photo {words}."
    return False, (f" Which photo carries the difference is not shown: on planted pairs "
                   f"(one region of one photo replaced by a look-alike's) this map named the "
                   f"altered photo only {words}; read where the photos differ, not which "
                   "one.")
