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
from facexplain.heads.parts import PartsHead, head_inputs
from facexplain.heads.parts_readout import peak_locations, peak_statistics, smoothed_responses

OCCLUSION_PARTS = ("left eye", "right eye", "nose", "mouth", "forehead", "left cheek",
                   "right cheek")


@dataclass(frozen=True)
class FilterResponses:
    """ψ (N, N_f, g, g) before LMF, ψ' = g_σ * LMF(ψ) (same shape) and f (N, N_f)."""

    psi: torch.Tensor
    smoothed: torch.Tensor
    features: torch.Tensor


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
    corners ('mouth'); standing, centred on the nose tip ('nose'). The paper's "less critical"
    places (Fig. 7) from the same five points: lying on the forehead (0.6 of the eye-to-mouth
    distance above the eyes), standing on each cheek (0.7 of the eye distance beside the nose
    tip, a little lower). Clipped to the crop.
    """
    marks = np.asarray(template_landmarks, dtype=np.float64)
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) template landmarks, got {marks.shape}")
    k = size / FRAME
    long, short = RECT_LONG * k, RECT_SHORT * k
    eyes, mouth = marks[:2].mean(axis=0), marks[3:].mean(axis=0)
    down, across = mouth - eyes, marks[1] - marks[0]
    spots = {"left eye": (marks[0], long, short), "right eye": (marks[1], long, short),
             "nose": (marks[2], short, long), "mouth": (mouth, long, short),
             "forehead": (eyes - 0.6 * down, long, short),
             "left cheek": (marks[2] - 0.7 * across + 0.15 * down, short, long),
             "right cheek": (marks[2] + 0.7 * across + 0.15 * down, short, long)}
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


def peak_metadata(head: PartsHead, model: FaceModel, faces: torch.Tensor,
                  batch: int = 32) -> dict[str, object]:
    """``{"peaks": {...}}`` for a checkpoint's metadata: average positive peak locations
    ("mean", (N_f, 2) cells, what the ``parts`` method names parts from), their "std" and
    "spread", and the same for the negative peaks under "negative", over aligned ``faces``."""
    pos, neg = peak_locations(filter_responses(head, model, faces, batch).smoothed)
    sp, sn = (peak_statistics(x, head.config.grid) for x in (pos, neg))
    return {"peaks": {**sp.to_json(), "negative": sn.to_json()}}


def occlusion_locality(diff: np.ndarray, peaks_px: np.ndarray,
                       corners: np.ndarray) -> dict[str, float]:
    """Fig. 7 in numbers, for one occluded place: the largest and mean |Δf_i| over filters, and
    Spearman's ρ between |Δf_i| and the distance of filter i's average peak (pixels) from the
    rectangle's centre; negative when the filters that move most sit near the occlusion, as the
    paper's part-tied filters would."""
    from scipy.stats import spearmanr

    d = np.asarray(diff, dtype=np.float64)
    dist = np.linalg.norm(np.asarray(peaks_px) - np.asarray(corners).mean(axis=0), axis=1)
    rho = float(spearmanr(d, dist).statistic) if d.std() > 0 and dist.std() > 0 else 0.0
    return {"max_abs_change": float(d.max()), "mean_abs_change": float(d.mean()),
            "spearman_change_vs_distance": rho}
