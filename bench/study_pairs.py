"""How hard are the mined look-alike pairs? LFW's own pairs vs the SLLFW-style pool.

For the first ``--folds`` folds of pairs.txt: the mining model's mean cosine of LFW's random
impostors vs the mined same-gender look-alikes, and the explained model's accuracy at its
calibrated threshold on LFW's pairs vs the mined pool (same genuine pairs, look-alike
impostors). Embeddings come from the disk cache the LFW benchmark fills.
Usage: .venv/bin/python bench/study_pairs.py [--folds 10] [--mining dlib-resnet] [--model sface]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from facexplain import settings
from facexplain.benchmarks.lookalike import mine_pairs
from facexplain.datasets.lfw import read_pairs, unique_images
from facexplain.scoring import get_calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--mining", default="dlib-resnet")
    parser.add_argument("--model", default="sface")
    args = parser.parse_args()
    from facexplain.benchmarks.lookalike import embed_images

    started = time.perf_counter()
    s = settings.current()
    lines = [p for p in read_pairs(s.lfw_pairs) if p.fold < args.folds]
    paths = unique_images(lines, s.lfw_images)
    mined_e = dict(zip(paths, embed_images(args.mining, paths, False), strict=True))
    model_e = dict(zip(paths, embed_images(args.model, paths, False), strict=True))
    thr = get_calibration(args.model).threshold

    def cos(e: dict, p) -> float:  # type: ignore[no-untyped-def,type-arg]
        return float(e[p.path_a(s.lfw_images)] @ e[p.path_b(s.lfw_images)])

    official_imp = [cos(mined_e, p) for p in lines if not p.same]
    official_acc = np.mean([(cos(model_e, p) >= thr) == p.same for p in lines])
    pool, meta = mine_pairs(args.mining, args.model, args.folds, target=None)
    mined_imp = [p.mining_score for p in pool if not p.same]
    model_imp = [p.model_score for p in pool if not p.same]
    off_model_imp = [cos(model_e, p) for p in lines if not p.same]
    print(f"# {platform.node()}, {time.strftime('%Y-%m-%d %H:%M')}, folds {args.folds}, "
          f"{len(paths)} images, {time.perf_counter() - started:.0f} s")
    print(f"| pairs | genuine | impostors | {args.mining} cosine of impostors (mean) | "
          f"{args.model} cosine of impostors (mean) | {args.model} accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    n_gen = sum(p.same for p in lines)
    print(f"| LFW pairs.txt | {n_gen} | {len(lines) - n_gen} | {np.mean(official_imp):.3f} | "
          f"{np.mean(off_model_imp):.3f} | {100 * official_acc:.2f}% |")
    print(f"| mined look-alikes | {meta['pool_genuine']} | {meta['pool_impostors']} | "
          f"{np.mean(mined_imp):.3f} | {np.mean(model_imp):.3f} | "
          f"{100 * float(meta['pool_model_accuracy']):.2f}% |")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
