"""Where xCos's learned attention W goes: face cells (eyes, nose, mouth) against the border.

Why: W is only an explanation if it weighs the parts of the face; on the demo pair it looked
nearly uniform with its largest weights on corners. Over held-out LFW pairs (the faithfulness
selection, folds 6-10) this averages W (xCos-L of the default head) and reports the share of
the total weight on the *face cells* — cells whose centre lies in the box of the template's five
landmarks, widened by half a cell — and on the *border ring* (outermost cells), each against
its share of the grid's area. A head attending like the paper's figures puts more than its area
share on the face cells.

Usage: .venv/bin/python bench/xcos_attention.py [--pairs 300] [--backbone sface] [--json F]
       [--head CHECKPOINT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS, select_heldout_pairs
from facexplain.benchmarks.xcos import cell_masks
from facexplain.datasets.lfw import read_pairs
from facexplain.explain.xcos import load_xcos
from facexplain.heads.xcos import default_checkpoint
from facexplain.pipeline import FacePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--json", default=None)
    parser.add_argument("--head", type=Path, default=None,
                        help="an xCos head checkpoint (default: the backbone's default head)")
    args = parser.parse_args()
    s = settings.current()
    pairs = select_heldout_pairs(read_pairs(s.lfw_pairs), args.pairs, HELDOUT_FOLDS)
    pipe = FacePipeline(args.backbone)
    head_path = args.head or default_checkpoint(args.backbone)
    xcos = load_xcos(args.backbone, head_path, model=pipe.model)
    weights, sims = [], []
    for p in tqdm(pairs, desc="xcos attention", unit="pair"):
        pair = pipe.pair(p.path_a(s.lfw_images), p.path_b(s.lfw_images)).tensor
        out, _ = xcos.compare(pair)
        weights.append(out.attention[0].double())
        sims.append(out.similarity[0].double())
    w = torch.stack(weights).numpy()  # (P, h, w), each summing to 1
    cells = torch.stack(sims).numpy()  # S of every pair
    h, wd = w.shape[1:]
    face, border = cell_masks(pipe.spec.alignment.as_array(), pipe.spec.input_size, h, wd)
    face_share = w[:, face].sum(axis=1)
    border_share = w[:, border].sum(axis=1)
    mean_w = w.mean(axis=0)
    corners = np.zeros_like(face)
    corners[0, 0] = corners[0, -1] = corners[-1, 0] = corners[-1, -1] = True
    corner_share = w[:, corners].sum(axis=1)
    result = {
        "backbone": args.backbone, "head": str(head_path), "n_pairs": len(pairs),
        "head_config": {k: v for k, v in xcos.head.config.__dict__.items()
                        if k in ("cell_specific", "attention_padding")},
        "corner_cells": 4, "corner_area_share": float(corners.mean()),
        "corner_weight_share_mean": float(corner_share.mean()),
        "corner_weight_share_std": float(corner_share.std()),
        "grid": [int(h), int(wd)],
        "face_cells": int(face.sum()), "face_area_share": float(face.mean()),
        "face_weight_share_mean": float(face_share.mean()),
        "face_weight_share_std": float(face_share.std()),
        "border_cells": int(border.sum()), "border_area_share": float(border.mean()),
        "border_weight_share_mean": float(border_share.mean()),
        "border_weight_share_std": float(border_share.std()),
        "max_cell_mean": float(mean_w.max()), "min_cell_mean": float(mean_w.min()),
        "mean_w": np.round(mean_w, 5).tolist(),
        # Why W goes where it goes: each cell's S over the pairs (mean, spread) and the head's
        # Pearson attention P (how well the cell's S tracks the teacher), against mean W.
        "mean_s": np.round(cells.mean(axis=0), 4).tolist(),
        "std_s": np.round(cells.std(axis=0), 4).tolist(),
        "pearson_p": np.round(xcos.head.get_buffer("pearson").double().numpy(), 5).tolist(),
        "r_w_with_std_s": float(np.corrcoef(mean_w.ravel(), cells.std(axis=0).ravel())[0, 1]),
        "r_w_with_mean_s": float(np.corrcoef(mean_w.ravel(), cells.mean(axis=0).ravel())[0, 1]),
        "r_w_with_p": float(np.corrcoef(mean_w.ravel(), xcos.head.get_buffer("pearson")
                                        .double().numpy().ravel())[0, 1]),
    }
    print(f"{args.backbone} head {head_path.name}, {len(pairs)} pairs, grid {h}x{wd}: "
          f"face cells {face.sum()} ({100 * face.mean():.1f}% of the area) carry "
          f"{100 * face_share.mean():.1f}% ± {100 * face_share.std():.1f}% of W; border ring "
          f"{border.sum()} ({100 * border.mean():.1f}%) carries {100 * border_share.mean():.1f}%"
          f" ± {100 * border_share.std():.1f}%; the four corners ({100 * corners.mean():.1f}%)"
          f" carry {100 * corner_share.mean():.1f}%; mean cell weight {100 * mean_w.min():.2f}-"
          f"{100 * mean_w.max():.2f}%")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
