"""Stamp packaged records measured on the pinned built-in weights with those weights' fingerprint.

Why: records (calibration, Θ, sanity verdicts, faithfulness ranks) are now keyed by the weights'
values (``explain.scorer.model_fingerprint``), so an edited model never reads them. The packaged
records were measured before the key existed, on the very files set-up pins by sha256; this
adds the fingerprint of those files' model to each, and refuses a record that names weights
other than the current built-in ones. Run: .venv/bin/python tools/stamp_weights.py
"""

from __future__ import annotations

import json
from pathlib import Path

from facexplain.backbones.registry import SPECS, load_backbone
from facexplain.explain.scorer import model_fingerprint

SRC = Path(__file__).resolve().parents[1] / "src" / "facexplain"
RECORDS = (SRC / "backbones" / "calibration.json", SRC / "explain" / "data" / "theta.json",
           SRC / "explain" / "data" / "sanity.json", SRC / "explain" / "data" / "faithfulness.json")


def main() -> None:
    prints = {name: model_fingerprint(load_backbone(name)) for name in SPECS}
    for path in RECORDS:
        rows = json.loads(path.read_text())
        for key, row in rows.items():
            backbone = row.get("backbone") or key.split(":")[0]
            if backbone not in prints:
                continue
            if row.get("weights") not in (None, prints[backbone]):
                raise SystemExit(f"{path.name}: {key} was measured on other weights")
            row["weights"] = prints[backbone]
        path.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"{path.relative_to(SRC)}: {len(rows)} records stamped")


if __name__ == "__main__":
    main()
