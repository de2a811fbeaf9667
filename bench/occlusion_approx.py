"""``--approx`` against the exact map and against Captum's Occlusion, over LFW pairs.

For each pair (evenly spread over the chosen folds, genuine and impostor alternating) the exact
incremental map and the approximate one are computed in the same process, alternating which
goes first; the table gives the speed ratio exact/approx per pair, the Spearman correlation of
the two maps over all pixels, and the overlap (IoU) of their top-10% pixels by Δ (the
difference map's brightest tenth). Captum's ``Occlusion`` (same windows, fill and score, as
``bench/occlusion_speed.py``) is timed on the first ``--captum-pairs`` pairs: at (8, 1) it takes
minutes per pair on a CPU core. Tune on folds 1-5 (``--folds 1-5``) and report 6-10.
Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/occlusion_approx.py [--backbone sface]
       [--setting 8:1] [--pairs 20] [--folds 6-10] [--captum-pairs 1] [--cap 0.5]
       [--drill 0.25] [--coarse-stride 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from occlusion_speed import run_captum
from scipy.stats import spearmanr

from facexplain import assets
from facexplain.align import warp_face
from facexplain.cache import DiskCache
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw import read_pairs
from facexplain.explain.approx_occlusion import ApproxSettings
from facexplain.explain.fills import make_fill
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"


def lfw_pairs(pipe: FacePipeline, n: int, folds: tuple[int, int]) -> list[torch.Tensor]:
    """``n`` aligned pairs spread over ``folds`` (1-based, inclusive), genuine/impostor mixed."""
    pool = [p for p in read_pairs(DATA / "pairs.txt") if folds[0] <= p.fold + 1 <= folds[1]]
    picked = [pool[i] for i in np.linspace(0, len(pool) - 1, n).round().astype(int)]
    images = DATA / "lfw-deepfunneled"
    paths = sorted({q for p in picked for q in (p.path_a(images), p.path_b(images))})
    located = locate_all(pipe, paths, DiskCache(assets.home() / "cache"), progress=False)
    return [torch.stack([warp_face(load_image(q), located[q].detection.landmarks,
                                   pipe.spec.alignment) for q in (p.path_a(images),
                                                                   p.path_b(images))])
            for p in picked]


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    n = max(1, int(fraction * a.size))
    ta, tb = set(np.argsort(a)[-n:]), set(np.argsort(b)[-n:])
    return len(ta & tb) / len(ta | tb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--setting", default="8:1", help="k:s")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--folds", default="6-10")
    parser.add_argument("--captum-pairs", type=int, default=1)
    parser.add_argument("--cap", type=float, default=ApproxSettings.cap or 0.0,
                        help="projective-field threshold τ (0: off)")
    parser.add_argument("--drill", type=float, default=ApproxSettings.drill)
    parser.add_argument("--coarse-stride", type=int, default=0, help="0: max(s, k // 2)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    k, s = (int(v) for v in args.setting.split(":"))
    lo, hi = (int(v) for v in args.folds.split("-"))
    settings = ApproxSettings(cap=args.cap or None, drill=args.drill,
                              coarse_stride=args.coarse_stride or None)
    pipe = FacePipeline(args.backbone, forward_runtime=False)
    scorer = pipe.scorer
    pairs = lfw_pairs(pipe, args.pairs, (lo, hi))
    print(f"machine: {platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {args.backbone} k={k} s={s}; "
          f"{settings.describe(k, s)}; {len(pairs)} pairs from folds {lo}-{hi}", flush=True)
    with torch.inference_mode():
        scorer.incremental(pairs[0])  # stage geometry, once (like loading the model)
    rows = []
    for i, pair in enumerate(pairs):
        fill = make_fill(pair, "mean-face", pipe.spec.template)
        exact_fn = PairwiseOcclusion(scorer, k, s, fill=fill)
        approx_fn = PairwiseOcclusion(scorer, k, s, fill=fill, approx=settings)
        times: dict[str, float] = {}
        maps: dict[str, np.ndarray] = {}
        order = [("exact", exact_fn), ("approx", approx_fn)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            out = fn.explain(pair)
            times[name] = time.perf_counter() - t0
            maps[name] = out.maps["delta"][0].numpy().ravel()
            if name == "approx":
                check = float(out.meta.approx_error or 0.0)  # type: ignore[attr-defined]
        if i < args.captum_pairs:
            t0 = time.perf_counter()
            run_captum(scorer, pair, fill, k, s, 32)
            times["captum"] = time.perf_counter() - t0
        row = {"pair": i, **{f"{n}_s": round(t, 3) for n, t in times.items()},
               "exact_over_approx": times["exact"] / times["approx"],
               "spearman": float(spearmanr(maps["exact"], maps["approx"])[0]),
               "top10_iou": top_iou(maps["exact"], maps["approx"]), "sampled_error": check}
        if "captum_s" in row:
            row["captum_over_approx"] = times["captum"] / times["approx"]
            row["captum_over_exact"] = times["captum"] / times["exact"]
        rows.append(row)
        print(json.dumps({key: round(v, 4) if isinstance(v, float) else v
                          for key, v in row.items()}), flush=True)
    summary = {
        "pairs": len(rows),
        "exact_over_approx_median": float(np.median([r["exact_over_approx"] for r in rows])),
        "spearman_mean": float(np.mean([r["spearman"] for r in rows])),
        "spearman_min": float(np.min([r["spearman"] for r in rows])),
        "top10_iou_mean": float(np.mean([r["top10_iou"] for r in rows])),
        "top10_iou_min": float(np.min([r["top10_iou"] for r in rows])),
        "captum_over_approx": [r["captum_over_approx"] for r in rows if "captum_over_approx" in r],
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"backbone": args.backbone, "k": k, "s": s,
                                         "settings": settings.describe(k, s),
                                         "folds": args.folds, "summary": summary,
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
