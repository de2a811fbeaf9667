"""High-dimensional LBP: the hand-crafted face descriptor DeepID2+ measures its neurons against.

Chen et al. (CVPR 2013) showed that uniform-LBP histograms sampled densely at several scales
get better as they get bigger; the DeepID2+ paper uses them as the baseline for attribute
classification and occlusion robustness. Here: the aligned face in grey, resized to a few
scales, 59-bin uniform LBP (scikit-image) histograms over a dense grid of cells at each scale,
square-rooted (Hellinger) so that cosine / linear models see a well-behaved vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from facexplain.errors import InvalidArgument

UNIFORM_BINS = 59  # 58 uniform patterns of 8 neighbours + one bin for all others


@dataclass(frozen=True)
class LbpConfig:
    """Face side before scaling, the scales, and the cell side in pixels at every scale."""

    size: int = 112
    scales: tuple[float, ...] = (1.0, 0.75, 0.5, 0.375)
    cell: int = 12
    radius: float = 1.0

    @property
    def dim(self) -> int:
        return UNIFORM_BINS * sum(g * g for g in self.grids)

    @property
    def grids(self) -> tuple[int, ...]:
        return tuple(max(1, (self.side(s) - 2 * self.margin) // self.cell) for s in self.scales)

    @property
    def margin(self) -> int:
        return int(np.ceil(self.radius))

    def side(self, scale: float) -> int:
        return max(self.cell + 2 * self.margin, round(self.size * scale))


DEFAULT_LBP = LbpConfig()


def to_gray(face: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) RGB in [0, 255] (tensor or array) -> (H, W) uint8 luminance (ITU-R 601)."""
    arr = face.detach().cpu().numpy() if isinstance(face, torch.Tensor) else np.asarray(face)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise InvalidArgument(f"expected a (3, H, W) face, got {arr.shape}")
    gray = 0.299 * arr[0] + 0.587 * arr[1] + 0.114 * arr[2]
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def lbp_histograms(gray: np.ndarray, cfg: LbpConfig = DEFAULT_LBP) -> np.ndarray:
    """The concatenated, L1-normalised, square-rooted cell histograms of one grey face."""
    from skimage.feature import local_binary_pattern

    if gray.ndim != 2:
        raise InvalidArgument(f"expected an (H, W) grey image, got {gray.shape}")
    base = Image.fromarray(np.asarray(gray, dtype=np.uint8))
    if base.size != (cfg.size, cfg.size):
        base = base.resize((cfg.size, cfg.size), Image.Resampling.BILINEAR)
    parts = []
    for scale, grid in zip(cfg.scales, cfg.grids, strict=True):
        side = cfg.side(scale)
        img = np.asarray(base.resize((side, side), Image.Resampling.BILINEAR)
                         if side != cfg.size else base)
        codes = local_binary_pattern(img, 8, cfg.radius, method="nri_uniform").astype(np.int64)
        used = grid * cfg.cell
        off = (side - used) // 2  # centred; the border rows (no full neighbourhood) stay out
        codes = codes[off : off + used, off : off + used]
        cell_row = np.arange(used) // cfg.cell
        cell_id = cell_row[:, None] * grid + cell_row[None, :]
        hist = np.bincount((cell_id * UNIFORM_BINS + codes).ravel(),
                           minlength=grid * grid * UNIFORM_BINS).astype(np.float32)
        parts.append(hist / float(cfg.cell * cfg.cell))
    return np.sqrt(np.concatenate(parts))


def lbp_features(faces: torch.Tensor, cfg: LbpConfig = DEFAULT_LBP) -> np.ndarray:
    """(N, 3, H, W) aligned faces -> (N, cfg.dim) float32 descriptors."""
    if faces.ndim != 4:
        raise InvalidArgument(f"expected (N, 3, H, W) faces, got {tuple(faces.shape)}")
    out = np.zeros((faces.shape[0], cfg.dim), dtype=np.float32)
    for i in range(faces.shape[0]):
        out[i] = lbp_histograms(to_gray(faces[i]), cfg)
    return out
