"""Heatmaps over aligned faces: both faces side by side under one colour scale (paper Fig. 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _face_array(pixels: torch.Tensor) -> np.ndarray:
    return pixels.detach().clamp(0, 255).permute(1, 2, 0).cpu().numpy().astype(np.uint8)


def save_pair_overlay(
    faces: torch.Tensor,
    maps: torch.Tensor,
    path: Path,
    title: str,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
) -> Path:
    """Draw map[i] over faces[i] for the two faces, sharing one colour scale and a colour bar.

    ``faces`` is (2, 3, H, W) RGB in [0, 255]; ``maps`` is (2, H, W). A fixed ``vmin``/``vmax``
    (e.g. 0 and 1 for Θ-normalised maps) keeps pairs comparable: a genuine pair stays dark.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = maps.detach().float().cpu().numpy()
    lo = float(m.min()) if vmin is None else vmin
    hi = float(m.max()) if vmax is None else vmax
    if hi <= lo:
        hi = lo + 1e-12
    fig, axes = plt.subplots(1, 3, figsize=(5.6, 2.8), dpi=130, layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 0.05]})
    image = None
    for i in range(2):
        ax = axes[i]
        ax.imshow(_face_array(faces[i]))
        image = ax.imshow(m[i], cmap=cmap, alpha=alpha, vmin=lo, vmax=hi,
                          interpolation="bilinear")
        ax.set_axis_off()
        ax.set_title("face A" if i == 0 else "face B", fontsize=8)
    assert image is not None
    fig.colorbar(image, cax=axes[2])
    axes[2].tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
