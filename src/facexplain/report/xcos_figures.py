"""Pictures of an xCos explanation in the look of the paper's Fig. 3.

Why: the numbers only explain if a person can see them on the faces. Top row: S (cell cosine,
diverging colormap centred at 0, blue = alike as in the paper) over both aligned faces with the
grid drawn, and as a grid with each value printed; bottom row: the same for W (sequential
colormap, printed in percent). The title restates xCos = <S, W>.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from facexplain.errors import InvalidArgument

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

S_CMAP = "RdBu"
W_CMAP = "YlOrRd"


def _face_array(face: torch.Tensor) -> np.ndarray:
    if face.ndim != 3 or face.shape[0] != 3:
        raise InvalidArgument(f"expected a (3, H, W) face, got {tuple(face.shape)}")
    return face.detach().clamp(0, 255).permute(1, 2, 0).cpu().numpy().astype(np.uint8)


def _draw_grid(ax: Axes, h: int, w: int, size: tuple[int, int]) -> None:
    ph, pw = size
    for i in range(1, h):
        ax.axhline(i * ph / h - 0.5, color="white", lw=0.6, alpha=0.8)
    for j in range(1, w):
        ax.axvline(j * pw / w - 0.5, color="white", lw=0.6, alpha=0.8)


def _overlay(ax: Axes, face: np.ndarray, grid: np.ndarray, cmap: str, vmin: float,
             vmax: float) -> None:
    ph, pw = face.shape[:2]
    ax.imshow(face)
    ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.5, interpolation="nearest",
              extent=(-0.5, pw - 0.5, ph - 0.5, -0.5))
    _draw_grid(ax, grid.shape[0], grid.shape[1], (ph, pw))
    ax.set_axis_off()


def _value_grid(ax: Axes, grid: np.ndarray, cmap: str, vmin: float, vmax: float,
                fmt: str) -> object:
    import matplotlib

    im = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    colours = matplotlib.colormaps[cmap]((grid - vmin) / (vmax - vmin + 1e-12))
    h, w = grid.shape
    fontsize = max(4.0, min(9.0, 60.0 / max(h, w)))
    for i in range(h):
        for j in range(w):
            r, g, b = colours[i, j, :3]
            text = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, format(grid[i, j], fmt), ha="center", va="center",
                    fontsize=fontsize, color=text)
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="white", lw=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    return im


def xcos_figure(
    face_a: torch.Tensor, face_b: torch.Tensor, s: torch.Tensor, w: torch.Tensor,
    score: float | None = None, title: str | None = None,
) -> Figure:
    """A 2x3 figure: S over face A, over face B, as values; then the same for W."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if s.ndim != 2 or s.shape != w.shape:
        raise InvalidArgument(f"S and W must be equal (h, w) grids, got {tuple(s.shape)}, "
                              f"{tuple(w.shape)}")
    sa, wa = s.detach().double().cpu().numpy(), w.detach().double().cpu().numpy()
    fa, fb = _face_array(face_a), _face_array(face_b)
    value = float((sa * wa).sum()) if score is None else score
    w_pct = 100.0 * wa
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 7.0), dpi=110)
    rows = (
        (sa, S_CMAP, -1.0, 1.0, ".2f", "S: cosine of each cell"),
        (w_pct, W_CMAP, 0.0, max(float(w_pct.max()), 1e-9), ".1f", "W: attention weight (%)"),
    )
    for row, (grid, cmap, vmin, vmax, fmt, label) in enumerate(rows):
        _overlay(axes[row, 0], fa, grid, cmap, vmin, vmax)
        _overlay(axes[row, 1], fb, grid, cmap, vmin, vmax)
        im = _value_grid(axes[row, 2], grid, cmap, vmin, vmax, fmt)
        fig.colorbar(im, ax=axes[row, 2], fraction=0.046, pad=0.04)  # type: ignore[arg-type]
        axes[row, 2].set_title(label, fontsize=10)
    axes[0, 0].set_title("face A", fontsize=10)
    axes[0, 1].set_title("face B", fontsize=10)
    head = title or "xCos"
    fig.suptitle(f"{head}: xCos = <S, W> = {value:.4f}", fontsize=12)
    fig.tight_layout()
    return fig


def save_xcos_figure(
    path: Path, face_a: torch.Tensor, face_b: torch.Tensor, s: torch.Tensor, w: torch.Tensor,
    score: float | None = None, title: str | None = None,
) -> Path:
    """Draw ``xcos_figure`` to ``path`` (PNG or anything matplotlib writes)."""
    import matplotlib.pyplot as plt

    fig = xcos_figure(face_a, face_b, s, w, score, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
