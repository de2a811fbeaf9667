"""What the part filters of a ``heads.parts.PartsHead`` look at (Yin et al., Sec. 4.3-4.4).

Why: the head is only interpretable if each filter fires at one place of the face, whoever the
person. This module measures that on aligned faces: where each filter's smoothed response peaks
(its maximum and, separately, its minimum; Fig. 5), how far those peaks wander from image to
image (per-filter std, Fig. 9), how spread out the filters are over the face (``spread``), how
much hiding one face part moves each dimension of f (Fig. 6), and which part a filter belongs to.

Units: peak locations are (row, col) in grid cells, cell (0, 0) is the top-left cell; a cell
centre maps to crop pixel ``(c + 0.5) * size / grid - 0.5``. Faces are already aligned by the
5-point similarity transform, which removes scale, roll and translation; the paper's further
warp of each peak to a frontal mesh is not applied (residual pose shows up in the std).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facexplain.backbones.base import FaceModel
from facexplain.datasets.occlusion import apply_mask
from facexplain.datasets.warped_occlusion import FRAME, RECT_LONG, RECT_SHORT, RectangleWarper
from facexplain.errors import InvalidArgument
from facexplain.heads.parts import PartsHead, head_inputs, lmf
from facexplain.losses.diversity import gaussian_smooth

SMOOTH_SIGMA = 1.0  # g_σ of the paper's ψ' = g_σ * LMF(ψ), in cells
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
OCCLUSION_PARTS = ("left eye", "right eye", "nose", "mouth")


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


@dataclass(frozen=True)
class FilterResponses:
    """ψ (N, N_f, g, g) before LMF, ψ' = g_σ * LMF(ψ) (same shape) and f (N, N_f)."""

    psi: torch.Tensor
    smoothed: torch.Tensor
    features: torch.Tensor


def smoothed_responses(head: PartsHead, psi: torch.Tensor) -> torch.Tensor:
    """The paper's ψ' = g_σ * LMF(ψ), σ = 1 cell."""
    return gaussian_smooth(lmf(psi, head.config.lmf_drop), SMOOTH_SIGMA)


@torch.no_grad()
def filter_responses(head: PartsHead, model: FaceModel, faces: torch.Tensor,
                     batch: int = 32) -> FilterResponses:
    """ψ, ψ' and f of aligned faces (N, 3, S, S) in [0, 255], ``batch`` faces per pass."""
    if faces.ndim != 4 or faces.shape[1] != 3:
        raise InvalidArgument(f"need aligned faces (N, 3, S, S), got {tuple(faces.shape)}")
    head.eval()
    cfg = head.config
    psis, smooth, feats = [], [], []
    for start in range(0, faces.shape[0], max(1, batch)):
        early, middle, late, _ = head_inputs(model, faces[start:start + batch], cfg.nodes,
                                             cfg.grid)
        psi = head.responses(early, middle, late)
        psis.append(psi)
        smooth.append(smoothed_responses(head, psi))
        feats.append(head.embed(psi))
    return FilterResponses(torch.cat(psis), torch.cat(smooth), torch.cat(feats))


def part_rectangles(template_landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Named template rectangles (4 corners, clockwise from top-left) for Fig. 6.

    Each is the paper's 32x12 rectangle of a 96 frame scaled to the crop: lying, centred on the
    eye ('left eye', 'right eye': the image's left and right) or on the midpoint of the mouth
    corners ('mouth'); standing, centred on the nose tip ('nose'). Clipped to the crop.
    """
    marks = np.asarray(template_landmarks, dtype=np.float64)
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) template landmarks, got {marks.shape}")
    k = size / FRAME
    long, short = RECT_LONG * k, RECT_SHORT * k
    spots = {"left eye": (marks[0], long, short), "right eye": (marks[1], long, short),
             "nose": (marks[2], short, long), "mouth": (marks[3:].mean(axis=0), long, short)}
    out = {}
    for name, (centre, w, h) in spots.items():
        cx = float(np.clip(centre[0], w / 2, size - 1 - w / 2))
        cy = float(np.clip(centre[1], h / 2, size - 1 - h / 2))
        out[name] = np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2],
                              [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]])
    return out


def occluded_faces(faces: torch.Tensor, landmarks_aligned: np.ndarray, warper: RectangleWarper,
                   corners: np.ndarray) -> torch.Tensor:
    """Copies of the faces (N, 3, S, S) with the template rectangle ``corners`` warped onto
    each through its aligned landmarks (N, 5, 2) and filled black."""
    return torch.stack([apply_mask(face, warper.mask(corners, marks).copy())
                        for face, marks in zip(faces, landmarks_aligned, strict=True)])


@torch.no_grad()
def occlusion_sensitivity(head: PartsHead, model: FaceModel, faces: torch.Tensor,
                          landmarks_aligned: np.ndarray, corners: np.ndarray,
                          template_landmarks: np.ndarray | None = None,
                          batch: int = 32) -> torch.Tensor:
    """Mean |f_i(I) - f_i(I_occ)| per filter (N_f,) over the faces (Fig. 6).

    The template rectangle ``corners`` (4, 2) is warped onto each face through its own aligned
    landmarks ``landmarks_aligned`` (N, 5, 2) (``datasets.warped_occlusion``) and filled black.
    ``template_landmarks`` default to the head's backbone template.
    """
    n, _, size, _ = faces.shape
    marks = np.asarray(landmarks_aligned, dtype=np.float64)
    if marks.shape != (n, 5, 2):
        raise InvalidArgument(f"need ({n}, 5, 2) aligned landmarks, got {marks.shape}")
    if template_landmarks is None:
        from facexplain.backbones.registry import get_spec

        template_landmarks = get_spec(head.config.backbone).alignment.as_array()
    warper = RectangleWarper(template_landmarks, size)
    total = torch.zeros(head.config.n_filters, dtype=torch.float64)
    for start in range(0, n, max(1, batch)):
        clean = faces[start:start + batch]
        hidden = occluded_faces(clean, marks[start:start + batch], warper, corners)
        f = filter_responses(head, model, torch.cat([clean, hidden]), batch=2 * batch).features
        total += (f[:len(clean)] - f[len(clean):]).abs().double().sum(dim=0)
    return (total / max(n, 1)).float()


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


def peak_metadata(head: PartsHead, model: FaceModel, faces: torch.Tensor,
                  batch: int = 32) -> dict[str, object]:
    """``{"peaks": {...}}`` for a checkpoint's metadata: average positive peak locations
    ("mean", (N_f, 2) cells, what the ``parts`` method names parts from), their "std" and
    "spread", and the same for the negative peaks under "negative", over aligned ``faces``."""
    pos, neg = peak_locations(filter_responses(head, model, faces, batch).smoothed)
    sp, sn = (peak_statistics(x, head.config.grid) for x in (pos, neg))
    return {"peaks": {**sp.to_json(), "negative": sn.to_json()}}
