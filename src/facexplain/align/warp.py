"""Five-point similarity alignment: a functional warp in numpy that matches cv2.warpAffine.

Why: backbones expect faces in a fixed landmark layout (a ``Template``). We fit the similarity
(rotation, uniform scale, translation; no reflection, no shear) that best maps the detected
landmarks onto the template in the least-squares sense (Umeyama), then resample with bilinear
interpolation. Pixel centres sit at integer coordinates, as in OpenCV, so crops made here agree
with the ones the backbones' reference pipelines produce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from facexplain.align.templates import Template
from facexplain.errors import InvalidArgument

if TYPE_CHECKING:
    import torch


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


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp a (C, H, W) float image by ``matrix`` (source -> output pixels) to ``size`` (h, w).

    Bilinear, zero outside the image; equals ``cv2.warpAffine(..., INTER_LINEAR,
    borderValue=0)`` up to OpenCV's 1/32-pixel fixed-point rounding. float32 out.
    """
    if image.ndim != 3:
        raise InvalidArgument(f"expected a (C, H, W) image, got shape {tuple(image.shape)}")
    _, in_h, in_w = image.shape
    out_h, out_w = size
    inv = invert_affine(matrix)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    # Each output pixel centre (x, y) reads the source at inv @ (x, y, 1).
    src_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    src_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(src_x).astype(np.int64), np.floor(src_y).astype(np.int64)
    fx, fy = (src_x - x0).astype(np.float32), (src_y - y0).astype(np.float32)
    src = np.asarray(image, dtype=np.float32)
    out = np.zeros((src.shape[0], out_h, out_w), dtype=np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < in_h) & (xx >= 0) & (xx < in_w)
            values = src[:, np.clip(yy, 0, in_h - 1), np.clip(xx, 0, in_w - 1)]
            out += values * (wy * wx * inside)[None]
    return out


def image_to_array(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An RGB (H, W, 3) array, or a (3, H, W) tensor, as a (3, H, W) float32 array in [0, 255]."""
    if not isinstance(image, np.ndarray):  # a torch tensor
        if image.ndim != 3 or image.shape[0] != 3:
            raise InvalidArgument(f"expected a (3, H, W) tensor, got {tuple(image.shape)}")
        return image.detach().float().cpu().numpy()
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgument(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    return np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1))


def alignment_matrix(landmarks: np.ndarray, template: Template) -> np.ndarray:
    """The (2, 3) similarity taking the five detected landmarks onto ``template``."""
    marks = np.asarray(landmarks, dtype=np.float64)
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) landmarks, got {marks.shape}")
    return estimate_similarity(marks, template.as_array())


def warp_face_array(
    image: np.ndarray | torch.Tensor, landmarks: np.ndarray, template: Template
) -> np.ndarray:
    """Align a face: (3, S, S) float32 RGB in [0, 255], landmarks moved onto the template."""
    matrix = alignment_matrix(landmarks, template)
    return warp_affine(image_to_array(image), matrix, (template.size, template.size))


def warp_face(
    image: np.ndarray | torch.Tensor, landmarks: np.ndarray, template: Template
) -> torch.Tensor:
    """``warp_face_array`` as a (3, S, S) float tensor, for the torch side."""
    import torch

    return torch.from_numpy(warp_face_array(image, landmarks, template))
