"""A figure of every registered method's ranking maps on a few planted pairs (one per region),
old and new methods side by side: the game's example figure without playing the game.
Usage: .venv/bin/python bench/planted_figure.py [--backbone dlib-resnet] [--controls 60]
       [--pairs 4] [--methods all-registered|a,b] [--out docs/figures/planted-all-methods-B.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from facexplain.benchmarks.planted import PlantedConfig, example_maps
from facexplain.benchmarks.planted_report import plot_examples
from facexplain.methods.registry import all_methods


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbone", default="dlib-resnet")
    ap.add_argument("--controls", type=int, default=60, help="the set's controls (its key)")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--methods", default="all-registered")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = tuple(n for n, i in all_methods().items() if i.rankings) if (
        args.methods == "all-registered") else tuple(args.methods.split(","))
    cfg = PlantedConfig(backbone=args.backbone, n_controls=args.controls, methods=names,
                        progress=False)
    started = time.perf_counter()
    game, picked, maps = example_maps(cfg, args.pairs)
    out = args.out or Path(f"docs/figures/planted-all-methods-{args.backbone}.png")
    plot_examples(game, maps, picked, out)
    print(f"wrote {out}: {len(picked)} pairs x {len(maps[0])} maps, "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
