"""How wide each backbone's cosines are on LFW: genuine and impostor means and spreads over
pairs.txt (6,000 pairs, cached embeddings). Why: a fixed margin in cosine (the planted game's
0.05 drop) means very different things on a backbone whose scores span 0.1 and one whose
scores span 0.6. The game's margin is therefore MARGIN_SHARE of the spread on folds 1-5
(``planting_margin``), printed here per backbone.
Usage: .venv/bin/python bench/score_spread.py [--backbones sface,dlib-resnet] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from facexplain import settings
from facexplain.benchmarks.lfw import LfwBenchmarkConfig, run_lfw_benchmark
from facexplain.benchmarks.planted_pairs import planting_margin
from facexplain.cache import DiskCache
from facexplain.datasets.lfw import read_pairs
from facexplain.pipeline import FacePipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbones", default="sface,dlib-resnet")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    cfg = settings.current()
    pairs = read_pairs(cfg.lfw / "pairs.txt")
    for name in args.backbones.split(","):
        result = run_lfw_benchmark(LfwBenchmarkConfig(backbone=name))
        scores, same = result.scores, result.same.astype(bool)
        gen, imp = scores[same], scores[~same]
        rows.append({"backbone": name, "genuine_mean": round(float(gen.mean()), 4),
                     "genuine_sd": round(float(gen.std()), 4),
                     "impostor_mean": round(float(imp.mean()), 4),
                     "impostor_sd": round(float(imp.std()), 4),
                     "gap": round(float(gen.mean() - imp.mean()), 4),
                     "margin_0.05_share_of_gap": round(0.05 / float(gen.mean() - imp.mean()), 3),
                     "planting_margin": planting_margin(
                         FacePipeline(name, forward_runtime=False), pairs,
                         cfg.lfw / "lfw-deepfunneled", DiskCache(cfg.cache), False)})
        print(rows[-1], flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "date": time.strftime("%Y-%m-%d"),
                                         "command": f"bench/score_spread.py --backbones "
                                         f"{args.backbones}"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
