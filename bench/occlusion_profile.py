"""Where incremental pairwise occlusion spends its time: cropped local stages vs whole maps.

Times every call of a local stage group (on crops, or on whole maps once a patch's region
covers most of a map) and of the whole-map tail, over one explanation of the `make demo` pair.
Proportions are what count (a loaded machine slows all parts alike). The whole-map part bounds
any exact method: from the switch on, every value of every map differs from the clean pair's,
so it must be computed. With ``--captum`` Captum's ``Occlusion`` runs on the same work in the
same process, and the ceiling of an exact method over it, Captum / whole-map seconds, is
printed beside the ratio reached.
Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/occlusion_profile.py [--backbones sface,...]
       [--setting 16:8] [--captum] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import time
from pathlib import Path

import torch
from occlusion_speed import aligned_pair, run_captum

from facexplain.explain import incremental
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.pipeline import FacePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default="sface")
    parser.add_argument("--setting", default="16:8", help="k:s")
    parser.add_argument("--captum", action="store_true",
                        help="also time Captum's Occlusion and print the exact ceiling")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    k, s = (int(v) for v in args.setting.split(":"))
    rows = [profile(name, k, s, args.captum) for name in args.backbones.split(",")]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": f"{platform.machine()}, torch {torch.__version__}, "
                       f"{torch.get_num_threads()} threads", "setting": [k, s],
            "rows": rows}, indent=2) + "\n")


def profile(name: str, k: int, s: int, captum: bool) -> dict[str, object]:
    """One backbone's split (and, with ``captum``, Captum's time and the exact ceiling)."""
    pipe = FacePipeline(name, forward_runtime=False)
    pair = aligned_pair(pipe)
    seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
    group_call = incremental._Group.__call__
    finish = incremental.IncrementalEmbedder._finish
    inside_finish = [False]

    def timed_group(self: incremental._Group, t: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = group_call(self, t)
        if not inside_finish[0]:
            seconds[LOCAL] += time.perf_counter() - t0
        return out

    def timed_finish(self: incremental.IncrementalEmbedder, t: torch.Tensor, level: int
                     ) -> torch.Tensor:
        inside_finish[0] = True
        t0 = time.perf_counter()
        out = finish(self, t, level)
        seconds[WHOLE] += time.perf_counter() - t0
        inside_finish[0] = False
        return out

    incremental._Group.__call__ = timed_group  # type: ignore[method-assign]
    incremental.IncrementalEmbedder._finish = timed_finish  # type: ignore[method-assign]
    try:
        explainer = PairwiseOcclusion.for_backbone(pipe.scorer, name, k, s)
        fill = explainer.fill_for(pair)
        explainer.explain(pair)  # warm-up, stage geometry
        seconds.clear()
        t0 = time.perf_counter()
        explainer.explain(pair)
        total = time.perf_counter() - t0
    finally:
        incremental._Group.__call__ = group_call  # type: ignore[method-assign]
        incremental.IncrementalEmbedder._finish = finish  # type: ignore[method-assign]
    print(f"{name} k={k} s={s}: {total:.2f} s", flush=True)
    seconds[BOOKKEEPING] = total - seconds[WHOLE] - seconds[LOCAL]
    for part in (WHOLE, LOCAL, BOOKKEEPING):
        print(f"  {part:<34} {seconds[part]:6.2f} s  {seconds[part] / total:6.1%}")
    row: dict[str, object] = {"backbone": name, "total_s": round(total, 3),
                              **{part: round(seconds[part], 3) for part in (WHOLE, LOCAL,
                                                                            BOOKKEEPING)}}
    if captum:
        t0 = time.perf_counter()
        run_captum(pipe.scorer, pair, fill, k, s, explainer.batch_size)
        t_captum = time.perf_counter() - t0
        row |= {"captum_s": round(t_captum, 3), "ratio": round(t_captum / total, 2),
                "exact_ceiling": round(t_captum / seconds[WHOLE], 2)}
        print(f"  Captum {t_captum:.2f} s: ratio {t_captum / total:.2f}, ceiling of an exact "
              f"method {t_captum / seconds[WHOLE]:.2f} (Captum / whole maps)", flush=True)
    return row


LOCAL, WHOLE = "local stages on crops", "whole maps (from the switch on)"
BOOKKEEPING = "bookkeeping (gather, paste, masks)"


if __name__ == "__main__":
    main()
