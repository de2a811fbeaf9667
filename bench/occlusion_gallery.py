"""The paper's Figs. 4-6 on LFW: 3 genuine and 6 impostor pairs, explained by Θ-normalised
pairwise occlusion (Fig. 4), the gradient (Fig. 5, ``--method saliency``) or the deconvnet
(Fig. 6, ``--method deconv``; on PReLU backbones such as sface it equals the gradient).

Pairs come from the last pairs of folds 6-10 (not used to calibrate Θ). The impostors are the
most similar-looking ones there (highest cosine), as the paper studies similar-looking faces;
the same nine pairs in every figure, as in the paper. The gradient and deconvnet maps are
magnitudes per face, each scaled to its own pair's maximum.

Grids without a stored Θ (the paper's fine (8, 1)) use ``--scale max``: Δ over the largest Δ
of the nine pairs, so genuine and impostor maps share one scale. Each pair's occlusion maps
are kept under ``out/gallery-cache/`` as they finish (a rerun resumes), with their seconds;
``--json`` writes the per-pair seconds and max Δ.
Usage: .venv/bin/python bench/occlusion_gallery.py [--backbone sface]
       [--method occlusion|saliency|deconv] [--patch 8 --stride 1 --scale max]
       [--out docs/figures/...] [--json docs/results/...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

from facexplain import settings
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.theta import get_theta
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import get_method
from facexplain.pipeline import FacePipeline
from facexplain.scoring import cosine

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LFW = settings.current().lfw


def candidates(pairs: list[LfwPair], per_fold: int = 12) -> list[LfwPair]:
    """The last ``per_fold`` genuine and impostor pairs of folds 6-10 (Θ never saw them)."""
    out: list[LfwPair] = []
    for fold in range(5, 10):
        in_fold = [p for p in pairs if p.fold == fold]
        out += [p for p in in_fold if p.same][-per_fold:]
        out += [p for p in in_fold if not p.same][-per_fold:]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--method", default="occlusion",
                        choices=("occlusion", "saliency", "deconv"))
    parser.add_argument("--scale", default="theta", choices=("theta", "max"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    prefix = "occlusion" if args.method == "occlusion" else f"{args.method}"
    out = args.out or Path(f"docs/figures/{prefix}-gallery-{args.backbone}.png")
    record = get_theta(args.backbone, args.patch, args.stride)
    if args.method == "occlusion" and args.scale == "theta" and record is None:
        raise SystemExit(f"no Θ stored for {args.backbone} k={args.patch} s={args.stride}; run "
                         "facexplain benchmark occlusion-stats ... --write-theta first, or "
                         "use --scale max")
    pipe = FacePipeline(args.backbone)
    images = LFW / "lfw-deepfunneled"
    pool = candidates(read_pairs(LFW / "pairs.txt"))
    faces = {p: pipe.pair(p.path_a(images), p.path_b(images)).tensor for p in pool}
    sims = {}
    with torch.inference_mode():
        for p, t in faces.items():
            e = pipe.model(t)
            sims[p] = float(cosine(e[0:1], e[1:2])[0])
    genuine = [p for p in pool if p.same][:3]
    impostors = sorted((p for p in pool if not p.same), key=lambda p: -sims[p])[:6]
    chosen = genuine + impostors
    if args.method != "occlusion":
        gradient_gallery(pipe, args.method, args.backbone, chosen, faces, sims, out)
        return
    occ = PairwiseOcclusion.for_backbone(pipe.scorer, args.backbone, args.patch, args.stride)
    cache = Path("out/gallery-cache") / f"{args.backbone}-k{args.patch}-s{args.stride}"
    cache.mkdir(parents=True, exist_ok=True)
    deltas, seconds = {}, {}
    for p in chosen:
        kept = cache / f"{p.name_a}-{p.index_a}-{p.name_b}-{p.index_b}.npz"
        if not kept.is_file():
            started = time.perf_counter()
            delta = occ.explain(faces[p]).maps["delta"].float().numpy()
            np.savez(kept, delta=delta, seconds=time.perf_counter() - started)
            print(f"{p.name_a} / {p.name_b}: {time.perf_counter() - started:.0f} s", flush=True)
        with np.load(kept) as f:
            deltas[p], seconds[p] = f["delta"], float(f["seconds"])
    if args.scale == "theta":
        assert record is not None
        scale, label = record.theta, f"Θ={record.theta:.4f}"
    else:
        scale = max(float(d.max()) for d in deltas.values())
        label = f"scaled by the largest Δ of the nine pairs, {scale:.4f}"
    fig, axes = plt.subplots(3, 6, figsize=(12, 6.6), dpi=110, layout="constrained")
    image = None
    for i, p in enumerate(chosen):
        pair, maps = faces[p], np.clip(deltas[p] / scale, 0, 1)
        for j in range(2):
            ax = axes[i // 3, (i % 3) * 2 + j]
            ax.imshow(pair[j].permute(1, 2, 0).clamp(0, 255).byte().numpy())
            image = ax.imshow(maps[j], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            ax.set_axis_off()
        kind = "genuine" if p.same else "impostor"
        axes[i // 3, (i % 3) * 2].set_title(
            f"{kind}: {p.name_a[:14]} / {p.name_b[:14]}\ncos {sims[p]:.3f}, "
            f"max Δ {float(deltas[p].max()):.3f}", fontsize=7, loc="left")
    assert image is not None
    fig.colorbar(image, ax=axes, shrink=0.6,
                 label="clip(Δ/Θ, 0, 1)" if args.scale == "theta" else "clip(Δ/max Δ, 0, 1)")
    fig.suptitle(f"{args.backbone}: pairwise occlusion k={args.patch}, s={args.stride}, "
                 f"{label} — top row genuine, rows 2-3 the most similar-looking impostors",
                 fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")
    rows = [{"pair": f"{p.name_a} {p.index_a} / {p.name_b} {p.index_b}", "same": p.same,
             "cosine": round(sims[p], 4), "max_delta": round(float(deltas[p].max()), 5),
             "seconds": round(seconds[p], 1)} for p in chosen]
    print(rows)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "backbone": args.backbone, "patch": args.patch, "stride": args.stride,
            "scale": args.scale, "scale_value": scale, "threads": torch.get_num_threads(),
            "figure": str(out), "pairs": rows,
            "total_seconds": round(sum(seconds.values()), 1)}, indent=2) + "\n")


def gradient_gallery(pipe: FacePipeline, method: str, backbone: str, chosen: list[LfwPair],
                     faces: dict[LfwPair, torch.Tensor], sims: dict[LfwPair, float],
                     out: Path) -> None:
    """Figs. 5 and 6: each face's map magnitude over the face, scaled per pair."""
    info = get_method(method)
    explainer = info.build(pipe.scorer, ExplainOptions(progress=False))
    ranking = next(r for r in info.rankings if r.row(method).endswith("-abs"))
    fig, axes = plt.subplots(3, 6, figsize=(12, 6.6), dpi=110, layout="constrained")
    image = None
    for i, p in enumerate(chosen):
        pair = faces[p]
        raw = ranking.ranking(explainer.explain(pair).maps, "difference").detach().float()
        maps = (raw / raw.max().clamp_min(1e-12)).numpy()
        for j in range(2):
            ax = axes[i // 3, (i % 3) * 2 + j]
            ax.imshow(pair[j].permute(1, 2, 0).clamp(0, 255).byte().numpy())
            image = ax.imshow(maps[j], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            ax.set_axis_off()
        kind = "genuine" if p.same else "impostor"
        axes[i // 3, (i % 3) * 2].set_title(f"{kind}: {p.name_a[:14]} / {p.name_b[:14]}\n"
                                            f"cos {sims[p]:.3f}", fontsize=7, loc="left")
    assert image is not None
    fig.colorbar(image, ax=axes, shrink=0.6, label="|map| / pair max")
    title = {"saliency": "gradient back-propagation (paper 000, Fig. 5)",
             "deconv": "deconvnet (paper 000, Fig. 6)"}[method]
    fig.suptitle(f"{backbone}: {title} — top row genuine, rows 2-3 the most similar-looking "
                 "impostors", fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
