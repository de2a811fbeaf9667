"""Completeness of integrated gradients with the CLI defaults, on held-out LFW pairs.

Why: IG's attributions must add up to sim(pair) − sim(reference); with too few steps they do
not, and the map misleads. For each pair (the faithfulness benchmark's held-out selection,
folds 6-10) this runs `explain_pair(..., methods="ig")` with default options (baseline: the
mean face, steps: adaptive) and prints the relative completeness error and the steps used;
`--fill zero --steps 32` reproduces the old CLI setting for comparison.

Usage: .venv/bin/python bench/ig_completeness.py [--pairs 20] [--fill mean-face] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from facexplain import settings
from facexplain.api import explain_pair
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS, select_heldout_pairs
from facexplain.datasets.lfw import read_pairs
from facexplain.explain.gradients import GradientDetails
from facexplain.method_info import ExplainOptions
from facexplain.pipeline import FacePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--fill", default="mean-face")
    parser.add_argument("--steps", type=int, default=None, help="fixed steps (default adaptive)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    s = settings.current()
    pairs = select_heldout_pairs(read_pairs(s.lfw_pairs), args.pairs, HELDOUT_FOLDS)
    pipe = FacePipeline(args.backbone)
    options = ExplainOptions(fill=args.fill, ig_steps=args.steps)
    rows = []
    for p in pairs:
        t0 = time.perf_counter()
        result = explain_pair(p.path_a(s.lfw_images), p.path_b(s.lfw_images), methods="ig",
                              backbone=args.backbone, options=options, pipeline=pipe)
        d = result.results[0].explanation.meta
        assert isinstance(d, GradientDetails)
        rows.append({"pair": f"{p.name_a}_{p.index_a}|{p.name_b}_{p.index_b}", "same": p.same,
                     "steps": d.n_steps, "error": d.completeness_error,
                     "change": d.score_change, "seconds": round(time.perf_counter() - t0, 2)})
        print(f"{rows[-1]['pair']:<50} steps {d.n_steps:>4}  error {d.completeness_error:.4f}"
              f"  change {d.score_change:+.4f}", flush=True)
    errors = np.array([r["error"] for r in rows])
    steps = np.array([r["steps"] for r in rows])
    print(f"{args.backbone}, fill {args.fill}, steps {args.steps or 'adaptive'}: "
          f"{len(rows)} pairs, completeness error max {errors.max():.4f}, median "
          f"{np.median(errors):.4f}, under 5% on {int((errors < 0.05).sum())}/{len(rows)}; "
          f"steps median {int(np.median(steps))}, max {int(steps.max())}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"backbone": args.backbone, "fill": args.fill, "steps": args.steps,
                       "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
