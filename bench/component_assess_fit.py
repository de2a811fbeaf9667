"""Fit the component appearance model (``datasets.component_assess``) on LFW folds 1-5 and
measure it on folds 6-10: false alarms on clean faces, detection of drawn occluders.

    .venv/bin/python bench/component_faces.py --folds 1-5 --n 700 --out /tmp/c37-cal.npz
    .venv/bin/python bench/component_faces.py --folds 6-10 --n 260 --out /tmp/c37-eval.npz
    .venv/bin/python bench/component_assess_fit.py --cal /tmp/c37-cal.npz \
        --eval /tmp/c37-eval.npz --write

``--write`` stores the model the package ships (``datasets/data/component_appearance.json``);
the rates go to docs/results/component-assess.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

from facexplain.align.templates import ARCFACE_112
from facexplain.datasets import component_assess as ca
from facexplain.datasets.occluders import dark_band_over_eyes, hand_over_mouth
from facexplain.types import COMPONENTS

RESULT = Path("docs/results/component-assess.json")


def relocate(crops: np.ndarray) -> np.ndarray:
    """The 68 landmarks the landmark net finds on (N, S, S, 3) uint8 crops."""
    import torch

    from facexplain.align.landmarks68 import landmarks68, load_landmarks68

    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    return landmarks68(x, load_landmarks68()).numpy().astype(np.float64)


def rates(model: ca.AppearanceModel, crops: np.ndarray, marks: np.ndarray
          ) -> dict[str, object]:
    template = ARCFACE_112.as_array()
    clean = [ca.assess_components(c, m, model, template)
             for c, m in zip(crops, marks, strict=True)]
    pairs = list(zip(crops, marks, strict=True))
    band_crops = np.stack([dark_band_over_eyes(c, m, i) for i, (c, m) in enumerate(pairs)])
    hand_crops = np.stack([hand_over_mouth(c, m, i) for i, (c, m) in enumerate(pairs)])
    # the landmarks of the occluded faces, as the method finds them (not the clean ones)
    band = [ca.assess_components(c, m, model, template)
            for c, m in zip(band_crops, relocate(band_crops), strict=True)]
    hand = [ca.assess_components(c, m, model, template)
            for c, m in zip(hand_crops, relocate(hand_crops), strict=True)]
    n = len(crops)

    def share(rows: list[dict[str, str]], comp: str | None = None) -> float:
        return round(sum(bool(r) if comp is None else comp in r for r in rows) / n, 4)

    return {
        "n_faces": n,
        "clean_any_flag": share(clean),
        "clean_per_component": {c: share(clean, c) for c in COMPONENTS},
        "band_eyes_flagged": share(band, "eyes"),
        "band_per_component": {c: share(band, c) for c in COMPONENTS},
        "hand_mouth_flagged": share(hand, "mouth"),
        "hand_per_component": {c: share(hand, c) for c in COMPONENTS},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cal", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    cal, ev = np.load(args.cal), np.load(args.eval)
    template = ARCFACE_112.as_array()  # the crops are sface's (component_faces.py)
    model = ca.fit_appearance(cal["crops"], cal["marks"], template)
    result = {"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
              "fit": {"faces": int(len(cal["crops"])), "folds": "1-5",
                      "quantile": ca.QUANTILE, "margin": ca.MARGIN, "basis": ca.N_BASIS},
              "heldout": {"folds": "6-10", **rates(model, ev["crops"], ev["marks"])}}
    print(json.dumps(result, indent=2))
    if args.write:
        ca.save_appearance(model, ca.model_path())
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
