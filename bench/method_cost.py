"""What each explanation method costs per pair: seconds and images through the full model, on
real held-out LFW pairs, every method in one process (so the ratios to pairwise occlusion do not
depend on the machine's load), and what ``--method all`` costs end to end (the library call the
CLI makes: verdict, every method of ``all``; the report's drawing is not included).

Images through the model are counted by a hook on the backbone's ``forward``; pairwise occlusion
scores its windows incrementally (only the layers a window reaches are recomputed), so its count
is the clean pair only and its seconds are the honest measure. Gradient methods also run a
backward pass per forward.
Usage: .venv/bin/python bench/method_cost.py [--backbone sface] [--pairs 3] [--threads 2]
       [--methods all-registered|a,b,c] [--json docs/results/method-cost-sface.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facexplain import settings
from facexplain.api import explain_pair
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS, select_heldout_pairs
from facexplain.datasets.lfw import read_pairs
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import all_methods, get_method
from facexplain.pipeline import FacePipeline


class ForwardCounter:
    """Counts the images that go through a model's forward or ``forward_nodes`` (the read-out of
    named feature maps some methods use), every call, any batch size."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.images = 0
        self.handle = module.register_forward_pre_hook(self._count)
        nodes = getattr(module, "forward_nodes", None)
        if nodes is not None:
            def counted(x: torch.Tensor, *rest: Any, **kw: Any) -> Any:
                self.images += int(x.shape[0])
                return nodes(x, *rest, **kw)
            module.forward_nodes = counted  # type: ignore[method-assign]

    def _count(self, module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor):
            self.images += int(inputs[0].shape[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbone", default="sface")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="all-registered")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = settings.current()
    images = cfg.lfw / "lfw-deepfunneled"
    chosen = select_heldout_pairs(read_pairs(cfg.lfw / "pairs.txt"), args.pairs, HELDOUT_FOLDS)
    pipe = FacePipeline(args.backbone, forward_runtime=False)
    names = (list(all_methods()) if args.methods == "all-registered"
             else args.methods.split(","))
    options = ExplainOptions(progress=False)
    infos = {n: get_method(n) for n in names}
    usable = {n: i for n, i in infos.items() if i.supports is None or i.supports(pipe.spec)}
    for info in usable.values():
        if info.prepare is not None:
            info.prepare(args.backbone, False)
    explainers = {n: i.build(pipe.scorer, options) for n, i in usable.items()}
    tensors = [pipe.pair(p.path_a(images), p.path_b(images)).tensor for p in chosen]
    counter = ForwardCounter(pipe.scorer.model)
    seconds: dict[str, list[float]] = {n: [] for n in usable}
    forwards: dict[str, list[int]] = {n: [] for n in usable}
    for k, pair in enumerate(tensors):
        for name, explainer in explainers.items():
            pipe.scorer._last = None  # each method pays for its own clean embedding
            counter.images = 0
            started = time.perf_counter()
            explainer.explain(pair)
            seconds[name].append(time.perf_counter() - started)
            forwards[name].append(counter.images)
            print(f"pair {k + 1}/{len(tensors)} {name}: {seconds[name][-1]:.2f} s, "
                  f"{counter.images} images", flush=True)
    counter.handle.remove()
    reference = float(np.median(seconds["occlusion"])) if "occlusion" in seconds else None
    rows = {n: {"seconds_median": round(float(np.median(s)), 3),
                "seconds_max": round(float(np.max(s)), 3),
                "forward_images_median": int(np.median(forwards[n])),
                "ratio_to_occlusion": (round(float(np.median(s)) / reference, 3)
                                       if reference else None),
                "in_all": usable[n].in_all} for n, s in seconds.items()}
    all_seconds = []
    for p in chosen:
        started = time.perf_counter()
        explain_pair(p.path_a(images), p.path_b(images), "all", pipeline=pipe,
                     options=options)
        all_seconds.append(time.perf_counter() - started)
    doc = {"backbone": args.backbone, "pairs": [f"{p.name_a}_{p.index_a}|{p.name_b}_{p.index_b}"
                                               for p in chosen],
           "methods": rows, "skipped": sorted(set(infos) - set(usable)),
           "method_all_seconds_median": round(float(np.median(all_seconds)), 2),
           "method_all_seconds": [round(s, 2) for s in all_seconds],
           "date": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                      f"{args.threads} torch threads",
           "command": f"bench/method_cost.py --backbone {args.backbone} --pairs {args.pairs} "
                      f"--threads {args.threads}"
                      + (f" --methods {args.methods}" if args.methods != "all-registered" else "")}
    print(json.dumps(doc, indent=2))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
