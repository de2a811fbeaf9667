"""Where incremental pairwise occlusion spends its time: cropped local stages vs whole maps.

Times every call of a local stage group (on crops, or on whole maps once a patch's region
covers most of a map) and of the whole-map tail, over one explanation of the `make demo` pair.
Proportions are what count (a loaded machine slows all parts alike); the whole-map share
bounds what incremental evaluation can gain over full re-evaluation.
Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/occlusion_profile.py [--backbone sface]
       [--setting 16:8]
"""

from __future__ import annotations

import argparse
import collections
import time

import torch
from occlusion_speed import aligned_pair

from facexplain.explain import incremental
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.pipeline import FacePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--setting", default="16:8", help="k:s")
    args = parser.parse_args()
    k, s = (int(v) for v in args.setting.split(":"))
    pipe = FacePipeline(args.backbone, forward_runtime=False)
    pair = aligned_pair(pipe)
    seconds: collections.Counter[str] = collections.Counter()
    group_call = incremental._Group.__call__
    finish = incremental.IncrementalEmbedder._finish
    inside_finish = [False]

    def timed_group(self: incremental._Group, t: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = group_call(self, t)
        if not inside_finish[0]:
            seconds["local stages on crops"] += time.perf_counter() - t0
        return out

    def timed_finish(self: incremental.IncrementalEmbedder, t: torch.Tensor, level: int
                     ) -> torch.Tensor:
        inside_finish[0] = True
        t0 = time.perf_counter()
        out = finish(self, t, level)
        seconds["whole maps (from the switch on)"] += time.perf_counter() - t0
        inside_finish[0] = False
        return out

    incremental._Group.__call__ = timed_group  # type: ignore[method-assign]
    incremental.IncrementalEmbedder._finish = timed_finish  # type: ignore[method-assign]
    explainer = PairwiseOcclusion.for_backbone(pipe.scorer, args.backbone, k, s)
    explainer.explain(pair)  # warm-up, stage geometry
    seconds.clear()
    t0 = time.perf_counter()
    explainer.explain(pair)
    total = time.perf_counter() - t0
    print(f"{args.backbone} k={k} s={s}: {total:.2f} s")
    for part, value in seconds.most_common():
        print(f"  {part:<34} {value:6.2f} s  {value / total:6.1%}")
    rest = total - sum(seconds.values())
    print(f"  {'bookkeeping (gather, paste, masks)':<34} {rest:6.2f} s  {rest / total:6.1%}")


if __name__ == "__main__":
    main()
