"""Paper 001's Fig. 3 and Fig. 4 on LFW, from the ten fold heads (each pair scored by the head
that never saw its fold, at a threshold chosen on the other nine folds).

Fig. 3: a 2x2 grid, genuine / impostor x right / wrong, ``--per-cell`` pairs each: both faces,
the cell cosines S (red: alike, blue: different) and the attention W over face A.
Fig. 4: xCos's S x W beside Grad-CAM's similarity map for the same pairs (one right genuine,
one right impostor, one wrong of each kind).
Within each cell the pairs shown are the most decided ones (largest distance from the
threshold), so a "wrong" example is the head's most confident mistake.

Usage: .venv/bin/python bench/xcos_figures.py [--backbone sface] [--checkpoint-root DIR]
       [--fig3 docs/figures/xcos-fig3-sface.png] [--fig4 docs/figures/xcos-fig4-sface.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

from facexplain.benchmarks.xcos import fold_scores, load_fold_heads
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import get_method
from facexplain.pipeline import FacePipeline
from facexplain.scoring import best_threshold
from facexplain.train.xcos_data import XCosTrainConfig, load_lfw_features

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CELLS = (("genuine", True, True), ("genuine", True, False),
         ("impostor", False, True), ("impostor", False, False))


def heldout_thresholds(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Per pair, the threshold chosen on the other nine folds."""
    th = {int(f): best_threshold(scores[folds != f], same[folds != f]) for f in np.unique(folds)}
    return np.asarray([th[int(f)] for f in folds])


def pick(same: np.ndarray, right: np.ndarray, margin: np.ndarray, want_same: bool,
         want_right: bool, k: int) -> list[int]:
    idx = np.flatnonzero((same == want_same) & (right == want_right))
    return idx[np.argsort(-np.abs(margin[idx]))][:k].tolist()


def _face(ax, face: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    ax.imshow(face.permute(1, 2, 0).clamp(0, 255).byte().numpy())
    ax.set_axis_off()


def _over(ax, face: torch.Tensor, grid: np.ndarray, cmap: str, vmin: float,  # type: ignore[no-untyped-def]
          vmax: float) -> object:
    """A coarse map (h, w) drawn over the face, cell edges kept (nearest)."""
    _face(ax, face)
    size = face.shape[-1]
    return ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.55,
                     extent=(0, size, size, 0), interpolation="nearest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--checkpoint-root", type=Path, default=None)
    parser.add_argument("--per-cell", type=int, default=2)
    parser.add_argument("--fig3", type=Path)
    parser.add_argument("--fig4", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tag = "" if args.checkpoint_root is None else f"-{args.checkpoint_root.name}"
    fig3 = args.fig3 or Path(f"docs/figures/xcos-fig3-{args.backbone}{tag}.png")
    fig4 = args.fig4 or Path(f"docs/figures/xcos-fig4-{args.backbone}{tag}.png")
    heads = load_fold_heads(args.backbone, args.checkpoint_root)
    node = heads[0].config.node
    cfg = XCosTrainConfig(backbone=args.backbone, teacher=heads[0].config.teacher or None,
                          node=node)
    feats = load_lfw_features(cfg)
    pairs = read_pairs(cfg.pairs)
    index = {p: i for i, p in enumerate(feats.paths)}
    ia = torch.tensor([index[p.path_a(cfg.images)] for p in pairs])
    ib = torch.tensor([index[p.path_b(cfg.images)] for p in pairs])
    same = np.asarray([p.same for p in pairs])
    folds = np.asarray([p.fold for p in pairs])
    maps = feats.data.maps
    scores = fold_scores(heads, maps[ia], maps[ib], folds)["L"]
    margin = scores - heldout_thresholds(scores, same, folds)
    right = (margin >= 0) == same
    chosen = {(kind, ok): pick(same, right, margin, s, ok, args.per_cell)
              for kind, s, ok in CELLS}
    pipe = FacePipeline(args.backbone)

    def detail(i: int) -> tuple[LfwPair, torch.Tensor, np.ndarray, np.ndarray]:
        p = pairs[i]
        head = heads[int(folds[i])]
        with torch.no_grad():
            out = head(maps[ia[i]][None].float(), maps[ib[i]][None].float(), "L")
        face = pipe.pair(p.path_a(cfg.images), p.path_b(cfg.images)).tensor
        return p, face, out.similarity[0].numpy(), out.attention[0].numpy()

    n = args.per_cell
    fig, axes = plt.subplots(2 * n, 8, figsize=(17, 4.3 * n), dpi=100, squeeze=False,
                             layout="constrained")
    s_img = w_img = None
    for c, (kind, _, ok) in enumerate(CELLS):
        for r, i in enumerate(chosen[(kind, ok)]):
            p, face, s, w = detail(i)
            row, col = (c // 2) * n + r, (c % 2) * 4
            _face(axes[row, col], face[0])
            _face(axes[row, col + 1], face[1])
            s_img = _over(axes[row, col + 2], face[0], s, "RdBu_r", -1, 1)
            w_img = _over(axes[row, col + 3], face[0], w, "viridis", 0, float(w.max()))
            axes[row, col].set_title(
                f"{kind}, {'right' if ok else 'WRONG'}: xCos {scores[i]:.3f} "
                f"(threshold {scores[i] - margin[i]:.3f})\n{p.name_a[:16]} / {p.name_b[:16]}",
                fontsize=7, loc="left")
            axes[row, col + 2].set_title("S: cell cosine", fontsize=7)
            axes[row, col + 3].set_title(f"W (max {100 * w.max():.1f}%)", fontsize=7)
    if s_img is not None and w_img is not None:
        fig.colorbar(s_img, ax=axes, shrink=0.4, label="S (cell cosine)")
    fig.suptitle(f"xCos on {args.backbone} (fold heads, held-out thresholds): left genuine / "
                 "impostor pairs it got right, right the ones it got wrong", fontsize=9)
    fig3.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(fig3)
    plt.close(fig)
    print(f"wrote {fig3}")

    gradcam = get_method("gradcam").build(pipe.scorer, ExplainOptions(progress=False))
    shown = [chosen[(k, ok)][0] for k, _, ok in CELLS if chosen[(k, ok)]]
    fig, axes = plt.subplots(len(shown), 4, figsize=(8.5, 2.3 * len(shown)), dpi=100,
                             squeeze=False)
    for r, i in enumerate(shown):
        p, face, s, w = detail(i)
        sw = s * w * s.size  # S x W, scaled so a uniform W reads as S
        cam = gradcam.explain(face).maps["similarity"][0].detach().float()
        cam = F.interpolate(cam[None, None], size=face.shape[-1], mode="bilinear")[0, 0]
        _face(axes[r, 0], face[0])
        _face(axes[r, 1], face[1])
        lim = float(np.abs(sw).max()) or 1.0
        _over(axes[r, 2], face[0], sw, "RdBu_r", -lim, lim)
        axes[r, 3].imshow(face[0].permute(1, 2, 0).clamp(0, 255).byte().numpy())
        axes[r, 3].imshow(cam.numpy(), cmap="jet", alpha=0.5)
        axes[r, 3].set_axis_off()
        axes[r, 0].set_title(f"{'genuine' if p.same else 'impostor'}, xCos {scores[i]:.3f}",
                             fontsize=7, loc="left")
        axes[r, 2].set_title("xCos: S x W (face A)", fontsize=7)
        axes[r, 3].set_title("Grad-CAM: similarity (face A)", fontsize=7)
    fig.suptitle(f"{args.backbone}: xCos's local similarity and weight beside Grad-CAM",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(fig4)
    plt.close(fig)
    print(f"wrote {fig4}")
    if args.json:
        acc = float(right.mean())
        args.json.write_text(json.dumps({
            "backbone": args.backbone, "heads": str(args.checkpoint_root or "default"),
            "heldout_accuracy_L": acc,
            "counts": {f"{k}-{'right' if ok else 'wrong'}": int(((same == s) & (right == ok))
                                                                .sum()) for k, s, ok in CELLS},
            "shown": {f"{k}-{'right' if ok else 'wrong'}": [pairs[i].name_a + "|"
                                                             + pairs[i].name_b
                                                             for i in chosen[(k, ok)]]
                      for k, _, ok in CELLS}}, indent=1))


if __name__ == "__main__":
    main()
