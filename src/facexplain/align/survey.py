"""Run the detector over LFW pair images: misses, multi-face counts, speed and mean face layout.

Why: the fallback layout in ``detect.py`` and the numbers in the docs come from here, so they can
be re-derived with one command:

    python -m facexplain.align.survey /path/to/lfw [n_pairs]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facexplain.align.detect import MTCNN, choose_face


@dataclass(frozen=True)
class Survey:
    """What the detector did on a set of images."""

    n_images: int
    no_face: tuple[str, ...]
    several: tuple[tuple[str, int], ...]
    ms_per_image: float
    mean_box: tuple[float, ...]
    mean_landmarks: tuple[tuple[float, float], ...]


def pair_images(lfw_root: Path, n_pairs: int) -> list[Path]:
    """Distinct image paths of the first ``n_pairs`` pairs in ``lfw_root/pairs.txt``, in order."""
    lines = (lfw_root / "pairs.txt").read_text().splitlines()[1 : 1 + n_pairs]
    images = lfw_root / "lfw-deepfunneled"
    out: list[Path] = []
    for line in lines:
        f = line.split()
        refs = [(f[0], f[1]), (f[0], f[2])] if len(f) == 3 else [(f[0], f[1]), (f[2], f[3])]
        for name, idx in refs:
            p = images / name / f"{name}_{int(idx):04d}.jpg"
            if p not in out:
                out.append(p)
    return out


def survey(paths: list[Path], detector: MTCNN) -> Survey:
    """Detect in every image; mean layout uses the 'center' face, as fractions of image size."""
    no_face: list[str] = []
    several: list[tuple[str, int]] = []
    boxes: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    elapsed = 0.0
    for p in paths:
        image = np.asarray(Image.open(p).convert("RGB"))
        t0 = time.perf_counter()
        dets = detector.detect(image)
        elapsed += time.perf_counter() - t0
        if not dets:
            no_face.append(p.stem)
            continue
        if len(dets) > 1:
            several.append((p.stem, len(dets)))
        d = choose_face(dets, image.shape, "center")
        h, w = image.shape[:2]
        boxes.append(d.box / np.array([w, h, w, h]))
        marks.append(d.landmarks / np.array([w, h]))
    mean_box = np.mean(boxes, axis=0) if boxes else np.zeros(4)
    mean_marks = np.mean(marks, axis=0) if marks else np.zeros((5, 2))
    return Survey(
        n_images=len(paths),
        no_face=tuple(no_face),
        several=tuple(several),
        ms_per_image=1000.0 * elapsed / max(1, len(paths)),
        mean_box=tuple(round(float(v), 4) for v in mean_box),
        mean_landmarks=tuple((round(float(x), 4), round(float(y), 4)) for x, y in mean_marks),
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0])
    n_pairs = int(args[1]) if len(args) > 1 else 300
    torch.set_num_threads(1)
    paths = pair_images(root, n_pairs)
    s = survey(paths, MTCNN())
    print(f"images: {s.n_images} (first {n_pairs} pairs), "
          f"ms/image (1 thread): {s.ms_per_image:.1f}")
    print(f"no face: {len(s.no_face)} {list(s.no_face)}")
    print(f"several faces: {len(s.several)} {list(s.several)}")
    print(f"mean box (fractions): {s.mean_box}")
    print(f"mean landmarks (fractions): {s.mean_landmarks}")


if __name__ == "__main__":
    main()
