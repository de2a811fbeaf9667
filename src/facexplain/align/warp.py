"""Five-point similarity alignment: a functional warp in torch that matches cv2.warpAffine.

Why: backbones expect faces in a fixed landmark layout (a ``Template``). We fit the similarity
(rotation, uniform scale, translation; no reflection, no shear) that best maps the detected
landmarks onto the template in the least-squares sense (Umeyama), then resample with bilinear
interpolation. Pixel centres sit at integer coordinates, as in OpenCV, so crops made here agree
with the ones the backbones' reference pipelines produce.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from facexplain.align.templates import Template
from facexplain.errors import InvalidArgument


def estimate_similarity(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``M`` (2, 3) with ``dst ~= M @ [src; 1]`` (Umeyama, 1991).

    Reflections are excluded: a mirrored face is a different alignment, not a better fit.
    """
    src = np.asarray(src_pts, dtype=np.float64)
    dst = np.asarray(dst_pts, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise InvalidArgument(f"need matching (N>=2, 2) point sets, got {src.shape}, {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float((src_c**2).sum()) / src.shape[0]
    if src_var <= 0.0:
        raise InvalidArgument("source points coincide; a similarity transform is undefined")
    cov = dst_c.T @ src_c / src.shape[0]
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sing * d).sum()) / src_var
    shift = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, shift[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    inv = np.linalg.inv(m[:, :2])
    return np.hstack([inv, -(inv @ m[:, 2])[:, None]])


def warp_affine(image: torch.Tensor, matrix: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Warp a (C, H, W) float image by ``matrix`` (source -> output pixels) to ``size`` (h, w).

    Bilinear, zero outside the image; equals ``cv2.warpAffine(..., INTER_LINEAR,
    borderValue=0)`` up to OpenCV's 1/32-pixel fixed-point rounding. Differentiable in the image.
    """
    if image.ndim != 3:
        raise InvalidArgument(f"expected a (C, H, W) image, got shape {tuple(image.shape)}")
    _, in_h, in_w = image.shape
    out_h, out_w = size
    inv = torch.as_tensor(invert_affine(matrix), dtype=torch.float64)
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=torch.float64), torch.arange(out_w, dtype=torch.float64),
        indexing="ij",
    )
    # Each output pixel centre (x, y) reads the source at inv @ (x, y, 1).
    src_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    src_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    # grid_sample with align_corners=False puts pixel i's centre at (2i + 1) / size - 1.
    grid = torch.stack([(2 * src_x + 1) / in_w - 1, (2 * src_y + 1) / in_h - 1], dim=-1)
    grid = grid.to(image.dtype if image.is_floating_point() else torch.float32)
    src = image if image.is_floating_point() else image.float()
    out = F.grid_sample(src[None], grid[None], mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out[0]


def image_to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """An RGB (H, W, 3) array, or a (3, H, W) tensor, as a (3, H, W) float tensor in [0, 255]."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise InvalidArgument(f"expected a (3, H, W) tensor, got {tuple(image.shape)}")
        return image.float()
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgument(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)


def alignment_matrix(landmarks: np.ndarray, template: Template) -> np.ndarray:
    """The (2, 3) similarity taking the five detected landmarks onto ``template``."""
    marks = np.asarray(landmarks, dtype=np.float64)
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) landmarks, got {marks.shape}")
    return estimate_similarity(marks, template.as_array())


def warp_face(
    image: np.ndarray | torch.Tensor, landmarks: np.ndarray, template: Template
) -> torch.Tensor:
    """Align a face: (3, S, S) float RGB in [0, 255], landmarks moved onto the template points."""
    matrix = alignment_matrix(landmarks, template)
    return warp_affine(image_to_tensor(image), matrix, (template.size, template.size))
