"""Pairwise occlusion speed per backbone and setting, against Captum's Occlusion on the same work.

One real LFW pair (aligned with the cached benchmark detections) is explained by
``PairwiseOcclusion`` and by Captum's ``Occlusion`` on the pair stacked as one 6-channel input
(window (6, k, k), strides (6, s, s), the same fill as baselines, the same batch of occluded
pairs per forward), alternating the two in the same process, so the ratio does not depend on
the machine. Captum returns original − occluded; the table's max|diff| compares −Captum to Δ.
Where (size − k) is not a multiple of s, ours runs with Captum's edge rule ("clip").
Ours re-evaluates each occluded pair incrementally (``explain.incremental``: only the part of
the network a patch reaches); the stage geometry it needs is measured once per loaded model,
in the warm-up, like loading the model. ``--plain`` also times ours with full re-evaluation.
``--backbones none`` times the bookkeeping alone (a near-free score on a 112 sface crop).

Usage: .venv/bin/python bench/occlusion_speed.py [--backbones sface,dlib-resnet]
       [--settings 8:1,16:8,16:4] [--repeats 2] [--batch-size 32] [--json out.json]
       [--device cuda] [--plain]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import captum
import torch
from captum.attr import Occlusion

from facexplain import assets
from facexplain.align import warp_face
from facexplain.backbones.registry import SPECS
from facexplain.cache import DiskCache
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw import image_path
from facexplain.explain.base import PairScore, backbone_pair_score
from facexplain.explain.fills import make_fill
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.occlusion_loop import occlusion_windows
from facexplain.explain.scorer import PairScorer
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "lfw-deepfunneled"
# The impostor pair of `make demo` (LFW pairs.txt, fold 1).
PAIR = (("Abdel_Madi_Shabneh", 1), ("Dean_Barker", 1))


def aligned_pair(pipe: FacePipeline) -> torch.Tensor:
    paths = [image_path(LFW, name, i) for name, i in PAIR]
    located = locate_all(pipe, paths, DiskCache(assets.home() / "cache"), progress=False)
    return torch.stack([warp_face(load_image(p), located[p].detection.landmarks,
                                  pipe.spec.alignment) for p in paths])


def timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    t0 = time.perf_counter()
    out = fn()
    if out.is_cuda:
        torch.cuda.synchronize()  # count the queued kernels, not just their launch
    return time.perf_counter() - t0, out


def run_captum(score: PairScore, pair: torch.Tensor, fill: torch.Tensor, k: int, s: int,
               batch: int) -> torch.Tensor:
    """Captum's Occlusion on the stacked pair; returns −attribution, i.e. Δ of channel 0."""
    h, w = pair.shape[2:]
    occ = Occlusion(lambda x6: score(x6[:, :3], x6[:, 3:]))
    with torch.inference_mode():
        attr = occ.attribute(pair.reshape(1, 6, h, w), sliding_window_shapes=(6, k, k),
                             strides=(6, s, s), baselines=fill.reshape(1, 6, h, w),
                             perturbations_per_eval=batch)
    return -attr[0, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default=",".join(SPECS))
    parser.add_argument("--settings", default="8:1,16:8,16:4", help="k:s,k:s,...")
    parser.add_argument("--fill", default="mean-face")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="best of N alternating runs")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plain", action="store_true",
                        help="also time ours with full re-evaluation of every occluded pair")
    args = parser.parse_args()
    settings = [tuple(int(v) for v in kv.split(":")) for kv in args.settings.split(",")]
    print(f"machine: {platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), captum {captum.__version__}, "
          f"batch {args.batch_size} pairs, fill {args.fill}, best of {args.repeats}, "
          f"device {args.device}")
    header = (f"{'backbone':<12} {'size':>4} {'k':>3} {'s':>2} {'edge':>5} {'windows':>7} "
              f"{'ours s/pair':>11} {'captum s/pair':>13} {'captum/ours':>11} {'max|diff|':>9}"
              f" {'plain s/pair':>12} {'captum/plain':>12}")
    print(header)
    rows = []
    for name in args.backbones.split(","):
        model = None
        if name == "none":  # bookkeeping alone: a score that costs almost nothing
            pair = aligned_pair(FacePipeline("sface"))
            score: PairScore = lambda a, b: (a * b).mean(dim=(1, 2, 3))  # noqa: E731
            template = "arcface-112"
        else:
            pipe = FacePipeline(name)
            pair = aligned_pair(pipe)
            model = pipe.model.to(args.device)
            score = backbone_pair_score(model)
            template = pipe.spec.template
        fill = make_fill(pair, args.fill, template).to(args.device)
        pair = pair.to(args.device)
        size = int(pair.shape[-1])
        with torch.inference_mode():
            score(pair[:1], pair[1:])  # warm-up
            if model is not None:
                t0 = time.perf_counter()
                assert isinstance(score, PairScorer)
                score.incremental(pair)  # measures the stage geometry, once (kept on the scorer)
                print(f"{name}: stage geometry measured in {time.perf_counter() - t0:.2f} s",
                      flush=True)
        for k, s in settings:
            edge = "shift" if (size - k) % s == 0 else "clip"
            n_windows = len(occlusion_windows(size, size, k, s, edge))
            ours_fn = PairwiseOcclusion(score, k, s, fill=fill, batch_size=args.batch_size,
                                        edge=edge, incremental=model is not None)
            plain_fn = PairwiseOcclusion(score, k, s, fill=fill, batch_size=args.batch_size,
                                         edge=edge, incremental=False)
            t_ours, t_captum, t_plain = float("inf"), float("inf"), float("nan")
            ours = captum_map = torch.empty(0)
            order = ["ours", "captum", "plain"] if args.plain and model is not None else [
                "ours", "captum"]
            for rep in range(args.repeats):
                # Rotate which goes first, so warm-up and drifting load hit all alike.
                for who in order[rep % len(order):] + order[: rep % len(order)]:
                    if who == "ours":
                        t, ours = timed(
                            lambda: ours_fn.explain(pair).maps["delta"][0])  # noqa: B023
                        t_ours = min(t_ours, t)
                    elif who == "plain":
                        t, _ = timed(
                            lambda: plain_fn.explain(pair).maps["delta"][0])  # noqa: B023
                        t_plain = t if t_plain != t_plain else min(t_plain, t)
                    else:
                        t, captum_map = timed(
                            lambda: run_captum(score, pair, fill, k, s,  # noqa: B023
                                               args.batch_size))
                        t_captum = min(t_captum, t)
            diff = float((ours - captum_map).abs().max())
            row = {"backbone": name, "size": size, "k": k, "s": s, "edge": edge,
                   "windows": n_windows, "ours_s": round(t_ours, 3),
                   "captum_s": round(t_captum, 3), "ratio": round(t_captum / t_ours, 3),
                   "max_abs_diff": diff, "incremental": model is not None,
                   "plain_s": None if t_plain != t_plain else round(t_plain, 3),
                   "ratio_plain": None if t_plain != t_plain else round(t_captum / t_plain, 3)}
            rows.append(row)
            print(f"{name:<12} {size:>4} {k:>3} {s:>2} {edge:>5} {n_windows:>7} "
                  f"{t_ours:>11.2f} {t_captum:>13.2f} {t_captum / t_ours:>11.3f} {diff:>9.1e}"
                  f" {t_plain:>12.2f} {t_captum / t_plain:>12.3f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
