"""Occluders drawn on aligned faces: a dark band over the eyes, a hand over the mouth.

Why: whether a component is fit for comparison (``component_assess``) must be checked on real
faces with something covering a component. A dark band (a censor bar, sunglasses) differs from
the face by colour; a hand has the face's own skin colour, so only its shape and the missing
features give it away: the hand is the face's own median skin tone from the cheeks, with soft
shading, darker gaps between four fingers and sensor-like noise, so a detector cannot cheat on
a flat colour.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import ellipse, polygon

from facexplain.datasets.face_regions import eye_centres, eye_distance


def dark_band_over_eyes(crop: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 copy of ``crop`` with a near-black bar over both eyes along the eye
    line, from outside one outer corner to outside the other, 0.5 eye distances high."""
    rng = np.random.default_rng(seed)
    marks = np.asarray(landmarks, np.float64)
    unit = eye_distance(marks)
    left, right = eye_centres(marks)
    across = (right - left) / np.linalg.norm(right - left)
    down = np.array([-across[1], across[0]])
    mid = (left + right) / 2
    half_w, half_h = 0.95 * unit, 0.25 * unit
    corners = np.array([mid + sx * half_w * across + sy * half_h * down
                        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    out = np.asarray(crop, dtype=np.float64).copy()
    rr, cc = polygon(corners[:, 1], corners[:, 0], out.shape[:2])
    out[rr, cc] = np.array([22.0, 22.0, 28.0]) + rng.normal(0, 4, (len(rr), 3))
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def skin_colour(crop: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """The face's median RGB on the cheeks (between the eye corners and the mouth corners)."""
    pts = marks[[1, 2, 3, 31, 35, 13, 14, 15, 48, 54]]
    ys = np.clip(pts[:, 1].round().astype(int), 0, crop.shape[0] - 1)
    xs = np.clip(pts[:, 0].round().astype(int), 0, crop.shape[1] - 1)
    patch = [crop[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].reshape(-1, 3)
             for y, x in zip(ys, xs, strict=True)]
    return np.median(np.concatenate(patch).astype(np.float64), axis=0)


def hand_over_mouth(crop: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 copy of ``crop`` with a skin-coloured hand over the mouth: a palm on
    one cheek and four fingers reaching across the mouth, in the face's own skin tone."""
    rng = np.random.default_rng(seed)
    marks = np.asarray(landmarks, np.float64)
    unit = eye_distance(marks)
    h, w = crop.shape[:2]
    mouth = marks[48:68].mean(axis=0)
    side = 1.0 if seed % 2 == 0 else -1.0  # the palm on the image's right or left
    hand = np.zeros((h, w), dtype=bool)
    gaps = np.zeros((h, w), dtype=bool)
    palm = mouth + np.array([side * 0.75 * unit, 0.05 * unit])
    rr, cc = ellipse(palm[1], palm[0], 0.55 * unit, 0.4 * unit, (h, w))
    hand[rr, cc] = True
    finger_h = 0.19 * unit
    top = mouth[1] - 0.42 * unit
    for i in range(4):
        y0 = top + i * (finger_h + 0.02 * unit)
        length = (1.45 - 0.12 * abs(i - 1.5)) * unit
        x_in, x_out = palm[0] - side * length, palm[0]
        rr, cc = polygon([y0, y0, y0 + finger_h, y0 + finger_h],
                         [x_out, x_in, x_in, x_out], (h, w))
        hand[rr, cc] = True
        rr, cc = ellipse(y0 + finger_h / 2, x_in, finger_h / 2, finger_h / 2, (h, w))
        hand[rr, cc] = True
        if i:
            gy = int(round(y0 - 0.01 * unit))
            xs = np.arange(int(min(x_in, x_out)), int(max(x_in, x_out)))
            xs = xs[(xs >= 0) & (xs < w)]
            if 0 <= gy < h:
                gaps[gy, xs] = True
    skin = skin_colour(np.asarray(crop), marks)
    yy, _ = np.mgrid[0:h, 0:w]
    shade = 1.04 - 0.1 * (yy - top) / (1.2 * unit)  # light from above
    colour = skin[None, None, :] * shade[..., None] + rng.normal(0, 3, (h, w, 3))
    colour[gaps] *= 0.8
    out = np.asarray(crop, dtype=np.float64).copy()
    out[hand] = colour[hand]
    return np.clip(out.round(), 0, 255).astype(np.uint8)
