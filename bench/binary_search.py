"""Hamming vs exact float cosine top-10 search over 1,000,000 codes, repeated (median of runs).

The same measurement as ``facexplain analyze neurons`` (LFW embeddings from the cache plus
synthetic ones with their mean and covariance), alone and repeated, because one timing on a
shared two-core machine moves with the neighbours' load.
Usage: .venv/bin/python bench/binary_search.py [--backbones sface,...] [--runs 3]
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import replace

import numpy as np
import torch

from facexplain import assets
from facexplain.benchmarks.neuron_codes import outside_pair_medians, search_lfw
from facexplain.benchmarks.neurons import NeuronAnalysisConfig
from facexplain.cache import DiskCache
from facexplain.datasets.faces import embed_all, locate_all
from facexplain.datasets.lfw import read_pairs
from facexplain.datasets.lfw_people import load_lfw_people
from facexplain.pipeline import FacePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", default="sface,dlib-resnet,mobileface")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--codes", default="zero")
    args = parser.parse_args()
    people = load_lfw_people()
    cache = DiskCache(assets.home() / "cache")
    print(f"# {platform.machine()}, {torch.get_num_threads()} torch threads, {args.size:,} codes")
    print("| backbone | bits | float s / 200 q | Hamming s / 200 q | speed-up | recall@10 |")
    print("|---|---|---|---|---|---|")
    for name in args.backbones.split(","):
        pipe = FacePipeline(name)
        located = locate_all(pipe, people.paths, cache, False)
        emb_map = embed_all(pipe, located, cache, False, 32, False)
        emb = np.stack([emb_map[p] for p in people.paths]).astype(np.float32)
        cfg = replace(NeuronAnalysisConfig(backbone=name, progress=False), search_size=args.size,
                      codes=args.codes)
        th: np.ndarray | float = 0.0
        if args.codes == "median":
            pairs = read_pairs(cfg.lfw_root / "pairs.txt")
            th = outside_pair_medians(pairs, cfg.lfw_root / "lfw-deepfunneled", emb_map,
                                      people)[0]
        runs = [search_lfw(cfg, people, emb, np.random.default_rng(cfg.seed), th)
                for _ in range(args.runs)]
        fl = float(np.median([float(r["float_seconds"]) for r in runs]))  # type: ignore[arg-type]
        hm = float(np.median([float(r["binary_seconds"]) for r in runs]))  # type: ignore[arg-type]
        print(f"| `{name}` ({args.codes}) | {runs[0]['n_bits']} | {fl:.2f} | {hm:.2f} | "
              f"{fl / hm:.1f}x | {runs[0]['recall_at_10']} |", flush=True)


if __name__ == "__main__":
    main()
