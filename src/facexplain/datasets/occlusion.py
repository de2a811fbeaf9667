"""Synthetic occlusion of aligned faces: free-form brush strokes and face-mask templates.

Why: robustness claims (xCos paper, Sec. 5.1 / Fig. 5b) are measured on faces with a known
fraction hidden, and masks are the commonest real occluder. Everything works on the aligned
crop, so the occluded region is defined relative to the landmarks, the same for every photo.

- ``random_mask(size, area, rng)``: a bool (size, size) mask of random brush strokes covering
  ``area`` (a fraction) of the face region (by default the face ellipse of the ArcFace template
  scaled to ``size``; pass ``region`` for another layout).
- ``load_mask_templates()`` + ``place_mask_template(face, landmarks, template)``: a face-mask
  picture warped by a homography from its six anchors (``masks.cfg``) onto six points derived
  from the five landmarks of the aligned face (for an aligned crop: the template's points).
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from facexplain.align.templates import ARCFACE_112
from facexplain.errors import InputNotFound, InvalidArgument

ANCHOR_KEYS = ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f")


def face_region(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Bool (size, size) ellipse around the face, from its five landmarks.

    Centred a third of the way from the eye centre to the mouth centre, 1.3 eye distances wide
    and 1.3 eye-to-mouth distances tall (each way), turned with the face: on the ArcFace crop it
    runs from the forehead to the chin, so "x% of the face" excludes background.
    """
    marks = _check_landmarks(landmarks)
    eyes, mouth = marks[:2].mean(axis=0), marks[3:].mean(axis=0)
    eye_dist = float(np.linalg.norm(marks[1] - marks[0]))
    down = mouth - eyes
    height = float(np.linalg.norm(down))
    if eye_dist <= 0 or height <= 0:
        raise InvalidArgument("degenerate landmarks: eyes or eyes and mouth coincide")
    down /= height
    right = np.array([down[1], -down[0]])  # perpendicular, pointing from left eye to right eye
    if np.dot(right, marks[1] - marks[0]) < 0:
        right = -right
    centre = eyes + 0.3 * height * down
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xs - centre[0], ys - centre[1]
    along_right = (dx * right[0] + dy * right[1]) / (1.3 * eye_dist)
    along_down = (dx * down[0] + dy * down[1]) / (1.3 * height)
    return np.asarray(along_right**2 + along_down**2 <= 1.0)


def default_region(size: int) -> np.ndarray:
    """The face ellipse of the ArcFace template scaled to ``size`` (any square aligned crop)."""
    return face_region(ARCFACE_112.as_array() * (size / ARCFACE_112.size), size)


def random_mask(
    size: int, area: float, rng: np.random.Generator, region: np.ndarray | None = None
) -> np.ndarray:
    """A free-form brush-stroke mask covering ``area`` (0-1) of ``region``, as bool (size, size).

    Strokes are polylines of random direction, length and brush width (as the free-form masks of
    video inpainting that the xCos paper used); the last segment is shortened by bisection so the
    covered fraction lands within about a percent of ``area``. The mask is clipped to ``region``.
    """
    if not 0.0 <= area <= 1.0:
        raise InvalidArgument(f"area must be a fraction in [0, 1], got {area}")
    if size < 8:
        raise InvalidArgument(f"mask size must be at least 8 pixels, got {size}")
    reg = default_region(size) if region is None else np.asarray(region, dtype=bool)
    if reg.shape != (size, size):
        raise InvalidArgument(f"region must be ({size}, {size}), got {reg.shape}")
    n_region = int(reg.sum())
    if n_region == 0:
        raise InvalidArgument("the face region is empty")
    target = area * n_region
    canvas = Image.new("L", (size, size), 0)

    def covered(img: Image.Image) -> int:
        return int((np.asarray(img) > 0)[reg].sum())

    ry, rx = np.nonzero(reg)
    while covered(canvas) < target:
        k = int(rng.integers(len(rx)))
        point = np.array([rx[k], ry[k]], dtype=np.float64)
        angle = float(rng.uniform(0, 2 * np.pi))
        width = max(2, round(float(rng.uniform(0.05, 0.12)) * size))
        for _ in range(int(rng.integers(3, 9))):
            angle += float(rng.normal(0.0, 0.9))
            length = float(rng.uniform(0.08, 0.25)) * size
            end = np.clip(point + length * np.array([np.cos(angle), np.sin(angle)]), 0, size - 1)
            trial = canvas.copy()
            _stroke(trial, point, end, width)
            if covered(trial) <= target:
                canvas, point = trial, end
                continue
            lo, hi = 0.0, 1.0  # the full segment overshoots: find the length that fits
            for _ in range(10):
                mid = (lo + hi) / 2
                trial = canvas.copy()
                _stroke(trial, point, point + mid * (end - point), width)
                lo, hi = (mid, hi) if covered(trial) <= target else (lo, mid)
            _stroke(canvas, point, point + hi * (end - point), width)
            break
        if covered(canvas) >= target - 0.01 * n_region:
            break
    return np.asarray((np.asarray(canvas) > 0) & reg)


def _stroke(img: Image.Image, start: np.ndarray, end: np.ndarray, width: int) -> None:
    """One brush segment with round caps."""
    draw = ImageDraw.Draw(img)
    draw.line([tuple(start), tuple(end)], fill=255, width=width)
    r = width / 2
    for x, y in (start, end):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)


def apply_mask(face: torch.Tensor, mask: np.ndarray, fill: float = 0.0) -> torch.Tensor:
    """A copy of the (3, H, W) face with the masked pixels set to ``fill`` (default black)."""
    m = torch.from_numpy(np.asarray(mask, dtype=bool))
    if face.ndim != 3 or tuple(face.shape[1:]) != tuple(m.shape):
        raise InvalidArgument(f"mask {tuple(m.shape)} does not fit face {tuple(face.shape)}")
    return face.masked_fill(m[None], fill)


@dataclass(frozen=True)
class MaskTemplate:
    """A face-mask picture (RGBA) and its six anchors a-f in the picture's pixels.

    The anchors follow MaskTheFace's ``masks.cfg``: a, b, c along the top edge (left cheek, nose
    bridge, right cheek) and d, e, f along the bottom (left jaw, chin, right jaw).
    """

    name: str
    image: Path
    anchors: np.ndarray

    def load_rgba(self) -> np.ndarray:
        with Image.open(self.image) as im:
            return np.asarray(im.convert("RGBA"))


def load_mask_templates(root: Path | None = None, sides: bool = False) -> list[MaskTemplate]:
    """The templates listed in ``root/masks.cfg`` (default: the data root's masks) whose picture
    exists (sorted by name).

    ``sides=False`` keeps only the frontal ones: aligned crops are frontal, and the ``_left``/
    ``_right`` pictures are drawn for turned heads.
    """
    from facexplain import settings

    root = root if root is not None else settings.current().masks
    cfg_path = root / "masks.cfg"
    if not cfg_path.is_file():
        raise InputNotFound(f"no mask template list at {cfg_path}")
    cfg = configparser.ConfigParser()
    cfg.read(cfg_path)
    out: list[MaskTemplate] = []
    for name in cfg.sections():
        sec = cfg[name]
        if "template" not in sec or not all(k in sec for k in ANCHOR_KEYS):
            continue  # 'empty' and 'inpaint' entries have no picture
        if not sides and name.endswith(("_left", "_right")):
            continue
        image = root.parent / sec["template"]
        if not image.is_file():
            image = root / "templates" / Path(sec["template"]).name
        if not image.is_file():
            continue
        anchors = np.array([[float(v) for v in sec[k].split(",")] for k in ANCHOR_KEYS])
        out.append(MaskTemplate(name, image, anchors))
    if not out:
        raise InputNotFound(f"no usable mask templates in {cfg_path}")
    return sorted(out, key=lambda t: t.name)


def mask_anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """Where anchors a-f go on a face with these five landmarks, as (6, 2) pixels.

    Measured in eye distances ``d`` along the face's own axes: the top edge sits 0.2 d below
    the eye line (the nose bridge), 1.2 d to each side; the bottom corners 0.15 d below the
    mouth, 1.05 d out; the chin 0.55 d below the mouth centre.
    """
    marks = _check_landmarks(landmarks)
    eyes, mouth = marks[:2].mean(axis=0), marks[3:].mean(axis=0)
    right = marks[1] - marks[0]
    d = float(np.linalg.norm(right))
    if d <= 0:
        raise InvalidArgument("degenerate landmarks: the eyes coincide")
    right /= d
    down = np.array([-right[1], right[0]])
    if np.dot(down, mouth - eyes) < 0:
        down = -down
    bridge = eyes + 0.2 * d * down
    jaw = mouth + 0.15 * d * down
    return np.stack([
        bridge - 1.2 * d * right,
        bridge,
        bridge + 1.2 * d * right,
        jaw - 1.05 * d * right,
        mouth + 0.55 * d * down,
        jaw + 1.05 * d * right,
    ])


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 3x3 projective map with ``dst ~ H @ src`` (normalised DLT, Hartley)."""
    s, d = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 4:
        raise InvalidArgument(f"need matching (N>=4, 2) point sets, got {s.shape}, {d.shape}")
    ts, td = _normaliser(s), _normaliser(d)
    sh = (np.c_[s, np.ones(len(s))] @ ts.T)[:, :2]
    dh = (np.c_[d, np.ones(len(d))] @ td.T)[:, :2]
    rows = []
    for (x, y), (u, v) in zip(sh, dh, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ h @ ts
    return np.asarray(h / h[2, 2])


def _normaliser(p: np.ndarray) -> np.ndarray:
    mean = p.mean(axis=0)
    scale = np.sqrt(2) / max(float(np.linalg.norm(p - mean, axis=1).mean()), 1e-12)
    return np.array([[scale, 0, -scale * mean[0]], [0, scale, -scale * mean[1]], [0, 0, 1]])


def place_mask_template(
    face: torch.Tensor, landmarks: np.ndarray, template: MaskTemplate,
    rgba: np.ndarray | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Draw ``template`` on a (3, H, W) aligned face; returns the new face and the bool mask.

    ``landmarks`` are the five points in the crop (for an aligned face: its template's points).
    The picture is warped by the homography taking its anchors onto ``mask_anchor_points`` and
    alpha-blended; the mask is where the blended alpha exceeds one half. Pass ``rgba`` to reuse
    an already loaded picture.
    """
    if face.ndim != 3 or face.shape[0] != 3:
        raise InvalidArgument(f"expected a (3, H, W) face, got {tuple(face.shape)}")
    h, w = int(face.shape[1]), int(face.shape[2])
    pic = template.load_rgba() if rgba is None else rgba
    # PIL's perspective transform wants the map from output pixels back to picture pixels.
    back = homography(mask_anchor_points(landmarks), template.anchors)
    coeffs = tuple(float(c) for c in back.ravel()[:8])
    warped = Image.fromarray(pic).transform(
        (w, h), Image.Transform.PERSPECTIVE, coeffs, resample=Image.Resampling.BILINEAR
    )
    arr = torch.from_numpy(np.asarray(warped, dtype=np.float32)).permute(2, 0, 1)
    alpha = arr[3:4] / 255.0
    out = face.float() * (1 - alpha) + arr[:3] * alpha
    return out, alpha[0].numpy() > 0.5


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    marks = np.asarray(landmarks, dtype=np.float64)
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) landmarks, got {marks.shape}")
    return marks
