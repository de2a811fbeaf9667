"""Aligned LFW crops and their 68 landmarks for the component work (issue 37), cached as one npz.

Why a script: the assessability model is fitted on calibration folds 1-5 and its false-alarm
rate measured on folds 6-10; both need the same faces (the LFW-convention face of each photo,
warped to the backbone's template) and the landmark net's points on them.

    .venv/bin/python bench/component_faces.py --folds 1-5 --n 800 --out /tmp/faces-cal.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facexplain import settings
from facexplain.align import warp_face
from facexplain.align.landmarks68 import landmarks68, load_landmarks68
from facexplain.cache import DiskCache
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw import read_pairs, unique_images
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline


def fold_range(text: str) -> tuple[int, ...]:
    lo, hi = (int(v) for v in text.split("-"))
    return tuple(range(lo - 1, hi))  # 0-based


def collect(backbone: str, folds: tuple[int, ...], n: int, progress: bool = True
            ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, S, S, 3) uint8 crops, (N, 68, 2) landmarks and the photos' relative paths: one
    photo per person first (so many people), spread over the folds' pairs."""
    s = settings.current()
    pairs = [p for p in read_pairs(s.lfw_pairs) if p.fold in folds]
    seen: set[str] = set()
    paths: list[Path] = []
    for p in unique_images(pairs, s.lfw_images):
        if p.parent.name not in seen:
            seen.add(p.parent.name)
            paths.append(p)
    paths = paths[:n]
    pipe = FacePipeline(backbone)
    located = locate_all(pipe, paths, DiskCache(s.cache), progress)
    crops = torch.stack([warp_face(load_image(p), located[p].detection.landmarks,
                                   pipe.spec.alignment) for p in paths])
    marks = landmarks68(crops, load_landmarks68()).numpy()
    out = crops.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out, marks, [str(p.relative_to(s.lfw_images)) for p in paths]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="sface")
    ap.add_argument("--folds", default="1-5")
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    crops, marks, names = collect(args.backbone, fold_range(args.folds), args.n)
    np.savez_compressed(args.out, crops=crops, marks=marks, names=np.array(names))
    print(f"{len(names)} faces -> {args.out}")


if __name__ == "__main__":
    main()
