"""Why a per-face map can blame the unaltered photo: on altered planted pairs, how much hiding
(or substituting) the planted region in each photo raises the similarity.

For each of the first N altered pairs of a backbone's planted set: the similarity of the pair
with the region hidden (mean-face fill) in the altered photo only, in the unaltered photo only,
and in both; and with the region replaced by the other photo's pixels, in either photo. If the
difference belonged to the altered photo, hiding it there should help most. The script prints
how often each one-photo edit helps more in the unaltered photo, and the mean gains.
Usage: .venv/bin/python bench/planted_which_face.py --backbone sface [--n 100] [--controls 100]
       [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from facexplain.benchmarks.planted import PlantedConfig, planted_path
from facexplain.benchmarks.planted_pairs import PlantedSet
from facexplain.explain.fills import make_fill
from facexplain.pipeline import FacePipeline


def _editor(pipe: FacePipeline, x: torch.Tensor, m: torch.Tensor):  # type: ignore[no-untyped-def]
    """Similarity change when the region ``m`` of one face (or both) takes ``source``'s pixels."""
    def edit(face: int, source: torch.Tensor, both: bool = False) -> float:
        y = x.clone()
        for f in ((0, 1) if both else (face,)):
            y[f] = torch.where(m, source[f], x[f])
        return pipe.scorer.similarity(y) - pipe.scorer.similarity(x)

    return edit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbone", default="sface")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--controls", type=int, default=100, help="the set's controls (its key)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pipe = FacePipeline(args.backbone, forward_runtime=False)
    cfg = PlantedConfig(backbone=args.backbone, n_controls=args.controls)
    game = PlantedSet.load(planted_path(cfg, pipe))
    rows = []
    altered = [i for i, p in enumerate(game.pairs) if p.kind == "altered"][:args.n]
    for i in altered:
        p, x = game.pairs[i], game.tensor(i)
        m = torch.from_numpy(game.masks[i])[None]  # (1, H, W)
        fill = make_fill(x, "mean-face", pipe.spec.template)
        alt, other = p.face, 1 - p.face
        edit = _editor(pipe, x, m)
        rows.append({
            "region": p.region,
            "hide_altered": edit(alt, fill), "hide_unaltered": edit(other, fill),
            "hide_both": edit(alt, fill, both=True),
            "swap_into_altered": edit(alt, x.flip(0)),
            "swap_into_unaltered": edit(other, x.flip(0)),
        })
    keys = [k for k in rows[0] if k != "region"]
    summary = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}
    summary["n"] = len(rows)
    summary["hiding_helps_more_in_unaltered"] = round(float(np.mean(
        [r["hide_unaltered"] > r["hide_altered"] for r in rows])), 3)
    summary["swapping_helps_more_in_unaltered"] = round(float(np.mean(
        [r["swap_into_unaltered"] > r["swap_into_altered"] for r in rows])), 3)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "pairs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
