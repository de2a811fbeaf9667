"""Reading a part-filter head: where each filter peaks, how far its peaks wander, which part.

Why in ``heads``: the ``parts`` explanation method names each filter's face part from the
peak statistics stored with the head, training computes those statistics, and the filter study
(``analysis.filters``) measures them over many faces; all three read the same few functions.

Units: peak locations are (row, col) in grid cells, cell (0, 0) is the top-left cell; a cell
centre maps to crop pixel ``(c + 0.5) * size / grid - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facexplain.errors import InvalidArgument
from facexplain.heads.parts import PartsHead, lmf
from facexplain.losses.diversity import gaussian_smooth

SMOOTH_SIGMA = 1.0  # g_σ of the paper's ψ' = g_σ * LMF(ψ), in cells
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def peak_locations(responses: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each filter's maximum and of its minimum per image.

    ``responses`` (N, N_f, h, w) -> (pos, neg), float64 arrays (N, N_f, 2) in grid cells.
    Ties go to the first cell in row-major order.
    """
    r = _numpy(responses)
    if r.ndim != 4:
        raise InvalidArgument(f"need (N, N_f, h, w) responses, got {r.shape}")
    n, k, h, w = r.shape
    flat = r.reshape(n, k, h * w)

    def rc(index: np.ndarray) -> np.ndarray:
        return np.stack([index // w, index % w], axis=-1).astype(np.float64)

    return rc(flat.argmax(axis=2)), rc(flat.argmin(axis=2))


@dataclass(frozen=True)
class PeakStats:
    """Where the filters' peaks lie over many images, in grid cells.

    ``mean`` (N_f, 2): average (row, col) per filter; ``std`` (N_f,): root mean squared
    distance of the per-image peaks from that filter's mean; ``spread``: root mean squared
    distance of the per-filter means from their centroid (large: filters cover the face);
    ``median_std``: median of ``std`` (small: each filter stays on its place).
    """

    mean: np.ndarray
    std: np.ndarray
    spread: float
    median_std: float
    grid: int
    n_images: int

    def to_json(self) -> dict[str, object]:
        return {"spread": self.spread, "median_std": self.median_std, "grid": self.grid,
                "n_images": self.n_images, "mean": self.mean.round(4).tolist(),
                "std": self.std.round(4).tolist()}


def peak_statistics(locations: np.ndarray, grid: int,
                    weights: np.ndarray | None = None) -> PeakStats:
    """Statistics of peak ``locations`` (N, N_f, 2) from ``peak_locations`` on a grid x grid map.

    ``weights`` (N, N_f), optional: the paper's magnitude weighting of each image's peak in the
    filter's mean and std (default: every image counts the same).
    """
    loc = np.asarray(locations, dtype=np.float64)
    if loc.ndim != 3 or loc.shape[2] != 2 or loc.shape[0] < 1:
        raise InvalidArgument(f"need (N, N_f, 2) peak locations, got {loc.shape}")
    if grid < 1 or loc.min() < 0 or loc.max() > grid - 1:
        raise InvalidArgument(f"peak locations must lie in the {grid}x{grid} grid")
    if weights is None:
        wts = np.ones(loc.shape[:2])
    else:
        wts = np.abs(np.asarray(weights, dtype=np.float64))
        if wts.shape != loc.shape[:2]:
            raise InvalidArgument(f"weights {wts.shape} do not match locations {loc.shape[:2]}")
    wts = wts / np.maximum(wts.sum(axis=0, keepdims=True), 1e-12)  # per filter, sums to 1
    mean = (wts[..., None] * loc).sum(axis=0)  # (N_f, 2)
    sq = ((loc - mean[None]) ** 2).sum(axis=2)  # (N, N_f)
    std = np.sqrt((wts * sq).sum(axis=0))
    centre = mean.mean(axis=0)
    spread = float(np.sqrt(((mean - centre) ** 2).sum(axis=1).mean()))
    return PeakStats(mean, std, spread, float(np.median(std)), grid, int(loc.shape[0]))


def smoothed_responses(head: PartsHead, psi: torch.Tensor) -> torch.Tensor:
    """The paper's ψ' = g_σ * LMF(ψ), σ = 1 cell."""
    return gaussian_smooth(lmf(psi, head.config.lmf_drop), SMOOTH_SIGMA)


def cell_to_pixel(location: np.ndarray, grid: int, size: int) -> np.ndarray:
    """(…, 2) (row, col) in cells -> (…, 2) (x, y) crop pixels of the cells' centres."""
    loc = np.asarray(location, dtype=np.float64)
    return (loc[..., ::-1] + 0.5) * size / grid - 0.5


def part_of(mean_location: np.ndarray, template_landmarks: np.ndarray, grid: int,
            size: int) -> str:
    """The face part a filter is tied to, from its average peak location (row, col) in cells.

    Rule: the location goes to crop pixels (cell centre); with the template's eye distance d,
    it is the nearest of the five landmarks ('left eye', 'right eye', 'nose', 'left mouth
    corner', 'right mouth corner'; left/right as seen in the image) when that landmark is within
    d / 2. Otherwise it is placed in face coordinates: u along the eye line from the nose tip
    and v down from the eye midpoint towards the mouth midpoint, in units of d and of the
    eye-mouth distance m. Farther than 1.2 d sideways, or more than 1.0 m above the eyes or
    1.8 m below them: 'background/border'; above the eyes (v < -0.25): 'forehead'; below the
    mouth (v > 1.25): 'chin'; between the eyes (|u| < 0.3, v < 0.5): 'nose bridge'; else the
    cheek on that side ('left cheek' / 'right cheek').
    """
    marks = np.asarray(template_landmarks, dtype=np.float64)
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) template landmarks, got {marks.shape}")
    p = cell_to_pixel(np.asarray(mean_location, dtype=np.float64), grid, size)
    across = marks[1] - marks[0]
    d = float(np.linalg.norm(across))
    dist = np.linalg.norm(marks - p, axis=1)
    if dist.min() <= d / 2:
        return LANDMARK_NAMES[int(dist.argmin())]
    eyes, mouth = marks[:2].mean(axis=0), marks[3:].mean(axis=0)
    down = mouth - eyes
    m = float(np.linalg.norm(down))
    u = float((p - marks[2]) @ across) / d**2
    v = float((p - eyes) @ down) / m**2
    if abs(u) > 1.2 or v < -1.0 or v > 1.8:
        return "background/border"
    if v < -0.25:
        return "forehead"
    if v > 1.25:
        return "chin"
    if abs(u) < 0.3 and v < 0.5:
        return "nose bridge"
    return "left cheek" if u < 0 else "right cheek"


def part_names(mean_locations: np.ndarray, template_landmarks: np.ndarray, grid: int,
               size: int) -> list[str]:
    """``part_of`` for every filter's mean location (N_f, 2)."""
    return [part_of(loc, template_landmarks, grid, size) for loc in np.asarray(mean_locations)]
