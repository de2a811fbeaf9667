"""Pictures of the part filters (matplotlib, headless): the paper's Figs. 5, 6, 8, 9 and the
per-pair figure of the ``parts`` explanation method.

Peak locations come in grid cells (row, col) and are drawn at the cells' centres on the crop.
Responses ψ' are signed: red where a filter responds positively, blue negatively, each map
scaled to its own largest magnitude (Fig. 8's "two colours").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from facexplain.analysis.plots import _plt, _save
from facexplain.heads.parts_readout import PeakStats, cell_to_pixel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RESPONSE_CMAP = "RdBu_r"
STD_CMAP = "viridis"


def face_image(face: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, S, S) float in [0, 255] -> (S, S, 3) uint8 for imshow."""
    arr = face.detach().cpu().numpy() if isinstance(face, torch.Tensor) else np.asarray(face)
    return np.clip(arr, 0, 255).transpose(1, 2, 0).astype(np.uint8)


def _overlay(ax: Axes, face: np.ndarray, response: np.ndarray,
             vmax: float | None = None) -> None:
    size = face.shape[0]
    vmax = vmax or float(np.abs(response).max()) or 1.0
    ax.imshow(face)
    ax.imshow(response, cmap=RESPONSE_CMAP, vmin=-vmax, vmax=vmax, alpha=0.55,
              interpolation="bilinear", extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    ax.set_axis_off()


def plot_peak_locations(stats: Mapping[str, tuple[PeakStats, PeakStats]], mean_face: np.ndarray,
                        size: int, path: Path) -> Path:
    """Fig. 5: every filter's average positive (left) and negative (right) peak on the mean
    aligned face, one row per variant; colour = the filter's peak std (cells, shared scale)."""
    plt = _plt()
    rows = len(stats)
    fig, axes = plt.subplots(rows, 2, figsize=(7.2, 3.6 * rows), dpi=110, squeeze=False)
    vmax = max(float(s.std.max()) for pair in stats.values() for s in pair) or 1.0
    sc = None
    for row, (variant, pair) in enumerate(stats.items()):
        for col, (s, label) in enumerate(zip(pair, ("positive", "negative"), strict=True)):
            ax = axes[row, col]
            ax.imshow(mean_face)
            xy = cell_to_pixel(s.mean, s.grid, size)
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=s.std, cmap=STD_CMAP, vmin=0, vmax=vmax,
                            s=18, edgecolors="white", linewidths=0.4)
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_axis_off()
            ax.set_title(f"{variant}: {label} peaks\nspread {s.spread:.2f}, median std "
                         f"{s.median_std:.2f} cells", fontsize=9)
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02,
                     label="std of peak location (cells)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_std_histograms(stats: Mapping[str, tuple[PeakStats, PeakStats]], path: Path) -> Path:
    """Fig. 9: histograms of per-filter peak std, positive (left) and negative (right)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    top = max(float(s.std.max()) for pair in stats.values() for s in pair)
    bins = np.linspace(0, max(top, 1e-6), 26)
    for col, label in enumerate(("positive", "negative")):
        ax = axes[col]
        for variant, pair in stats.items():
            s = pair[col]
            ax.hist(s.std, bins=bins, alpha=0.5, label=f"{variant} (median {s.median_std:.2f})")
        ax.set_xlabel("std of peak location (cells)")
        ax.set_ylabel("filters")
        ax.set_title(f"{label} responses", fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_occlusion_sensitivity(diffs: Mapping[str, Mapping[str, np.ndarray]],
                               path: Path) -> Path:
    """Fig. 6: mean |f_i(I) - f_i(I_occ)| sorted over filters, one panel per occluded part
    (``diffs[part][variant]`` = (N_f,) means), one line per variant."""
    plt = _plt()
    parts = list(diffs)
    fig, axes = plt.subplots(1, len(parts), figsize=(4.6 * len(parts), 3.4), dpi=110,
                             squeeze=False)
    for col, part in enumerate(parts):
        ax = axes[0, col]
        for variant, d in diffs[part].items():
            ax.plot(np.sort(np.asarray(d))[::-1], label=variant)
        ax.set_xlabel("filter (sorted)")
        ax.set_ylabel("mean |f(I) - f(I occluded)|")
        ax.set_title(f"{part} occluded", fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_occlusion_locations(diffs: Mapping[str, Mapping[str, np.ndarray]],
                             peaks: Mapping[str, PeakStats],
                             rectangles: Mapping[str, np.ndarray], mean_face: np.ndarray,
                             size: int, path: Path) -> Path:
    """Fig. 7: for each occluded place (columns) and head (rows), every filter at its average
    peak on the mean face, coloured by its mean |f_i(I) - f_i(I_occ)| (one scale per row), the
    template rectangle outlined; the title gives the largest change."""
    plt = _plt()
    parts, variants = list(diffs), list(peaks)
    fig, axes = plt.subplots(len(variants), len(parts), figsize=(2.3 * len(parts) + 0.8,
                                                                 2.5 * len(variants)),
                             dpi=110, squeeze=False, layout="constrained")
    for r, variant in enumerate(variants):
        vmax = max(float(np.max(diffs[p][variant])) for p in parts) or 1.0
        xy = cell_to_pixel(peaks[variant].mean, peaks[variant].grid, size)
        sc = None
        for c, part in enumerate(parts):
            ax = axes[r, c]
            ax.imshow(mean_face)
            quad = np.vstack([rectangles[part], rectangles[part][:1]])
            ax.plot(quad[:, 0], quad[:, 1], color="white", lw=1.2)
            d = np.asarray(diffs[part][variant])
            order = np.argsort(d)  # the largest changes drawn last, on top
            sc = ax.scatter(xy[order, 0], xy[order, 1], c=d[order], cmap="magma", vmin=0,
                            vmax=vmax, s=14, edgecolors="none")
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_axis_off()
            ax.set_title(f"{variant}: {part}\nmax {d.max():.3f}", fontsize=8)
        if sc is not None:
            fig.colorbar(sc, ax=axes[r].tolist(), fraction=0.02, pad=0.01, label="|Δf|")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_response_maps(faces: torch.Tensor, responses: torch.Tensor, filters: Sequence[int],
                       labels: Sequence[str], path: Path, split: int | None = None,
                       title: str = "") -> Path:
    """Fig. 8: responses ψ' (N, N_f, g, g) of ``filters`` (columns) on the faces (rows);
    ``labels`` one per face; ``split`` draws a line under that many rows (subjects | one
    subject)."""
    plt = _plt()
    n, k = faces.shape[0], len(filters)
    fig, axes = plt.subplots(n, k, figsize=(1.25 * k, 1.3 * n + 0.4), dpi=110, squeeze=False)
    for r in range(n):
        img = face_image(faces[r])
        for c, filt in enumerate(filters):
            ax = axes[r, c]
            _overlay(ax, img, responses[r, filt].detach().cpu().numpy())
            if r == 0:
                ax.set_title(f"filter {filt}", fontsize=7)
        axes[r, 0].text(-4, img.shape[0] / 2, labels[r], fontsize=6, rotation=90,
                        ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if split is not None and 0 < split < n:
        y = 0.5 * (axes[split - 1, 0].get_position().y0 + axes[split, 0].get_position().y1)
        fig.add_artist(plt.Line2D([0.02, 0.98], [y, y], color="k", lw=1.5))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_pair_filters(face_a: torch.Tensor, face_b: torch.Tensor, responses: torch.Tensor,
                      captions: Sequence[str], path: Path, title: str = "") -> Path:
    """The ``parts`` method's figure: responses (2, k, g, g) of k filters on face A (top row)
    and face B (bottom row), one caption per filter (number, part, share); both faces share
    each filter's colour scale, so the two rows compare."""
    plt = _plt()
    k = responses.shape[1]
    scales = responses.detach().abs().amax(dim=(0, 2, 3)).cpu().numpy()
    fig, axes = plt.subplots(2, k, figsize=(1.9 * k, 4.4), dpi=110, squeeze=False)
    for r, face in enumerate((face_a, face_b)):
        img = face_image(face)
        for c in range(k):
            _overlay(axes[r, c], img, responses[r, c].detach().cpu().numpy(),
                     float(scales[c]))
            if r == 0:
                axes[r, c].set_title(captions[c], fontsize=7)
        axes[r, 0].text(-4, img.shape[0] / 2, "face A" if r == 0 else "face B", fontsize=8,
                        rotation=90, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)
