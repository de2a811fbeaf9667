"""The harder planted set: a rectangle or an ellipse around a landmark group, pasted into the
source photo before alignment.

Why: the landmark-shaped set (``planted_pairs``) replaces exactly a component's outline in the
aligned crop, so a method that hides components by the same outlines is handed the answer's
boundary. Here the altered area is a box or an ellipse around one landmark group (eyes, brows,
nose, mouth), its centre and size jittered by a seed drawn from the pair, cut from the
look-alike's *photo* (moved onto the target photo by a similarity fit of the group's 68-point
landmarks, found on the aligned crop and mapped back into the photo), Poisson-blended into the
target photo; then the altered photo is detected and aligned again like any photo. The mask the
maps are scored against is the pasted area carried through that new alignment.

Everything else is the landmark-shaped set's rule: held-out genuine pairs, the altered face
alternating, the groups tried in a rotating order, the first that lowers the similarity by the
margin kept; same-person pastes (the same area from another photo of the same person) and
untouched pairs as controls.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from skimage.transform import SimilarityTransform, warp
from tqdm import tqdm

from facexplain.align import warp_face_array
from facexplain.align.landmarks68 import Landmarks68Net, landmarks68, load_landmarks68
from facexplain.align.warp import (
    alignment_matrix,
    image_to_array,
    invert_affine,
    transform_points,
    warp_affine,
)
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS
from facexplain.benchmarks.planted_pairs import (
    REGION_POINTS,
    PlantedPair,
    PlantedSet,
    _Built,
    lookalike_donors,
    planting_margin,
)
from facexplain.benchmarks.populations import embed_photos
from facexplain.cache import DiskCache
from facexplain.datasets.blend import poisson_blend
from facexplain.datasets.face_regions import REGIONS, eye_distance
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw import LfwPair, unique_images
from facexplain.errors import InvalidArgument
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.types import LocatedFace

BOX_VERSION = "planted-box-v1"
OUTLINES = ("rectangle", "ellipse")
PAD = 0.12  # the area reaches this far (eye distances) beyond the group's landmarks
MIN_HALF = 0.12  # no half-side shorter than this (the brows' points lie nearly on a line)
SHIFT = 0.10  # the centre moves up to this far along each axis
SCALE = (0.9, 1.3)  # each half-side is multiplied by a draw from this range
ELLIPSE_GROWTH = 1.25  # an ellipse's half-axes over the box's half-sides (it cuts corners)


def pair_rng(key: str) -> np.random.Generator:
    """A generator seeded by ``key`` (pair and group), the same on every run and machine."""
    return np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16))


def paste_mask(marks: np.ndarray, region: str, shape: tuple[int, int],
               rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A (H, W) mask: a rectangle or an ellipse around ``region``'s landmarks (68, 2) in the
    photo, its axes along the eye line, centre and size jittered by ``rng``; and its outline."""
    unit = eye_distance(marks)
    left, right = marks[36:42].mean(axis=0), marks[42:48].mean(axis=0)
    dx, dy = right - left
    c, s = dx / np.hypot(dx, dy), dy / np.hypot(dx, dy)
    axes = np.array([[c, s], [-s, c]])  # rows: the eye line and the face's downward axis
    pts = marks[list(REGION_POINTS[region])] @ axes.T
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    outline = OUTLINES[int(rng.integers(len(OUTLINES)))]
    centre = (lo + hi) / 2 + rng.uniform(-SHIFT, SHIFT, 2) * unit
    half = np.maximum((hi - lo) / 2 + PAD * unit, MIN_HALF * unit) * rng.uniform(*SCALE, 2)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    local = np.stack([xs, ys], axis=-1) @ axes.T - centre
    if outline == "ellipse":
        r = local / (half * ELLIPSE_GROWTH)
        return (r ** 2).sum(axis=-1) <= 1.0, outline
    return (np.abs(local) <= half).all(axis=-1), outline


def photo_landmarks(pipe: FacePipeline, net: Landmarks68Net, photo: np.ndarray,
                    face: LocatedFace) -> np.ndarray:
    """68 landmarks (68, 2) of the located face in the photo's own pixels: found on the aligned
    crop, carried back through the inverse of the alignment."""
    matrix = alignment_matrix(face.detection.landmarks, pipe.spec.alignment)
    size = pipe.spec.alignment.size
    crop = warp_affine(image_to_array(photo), matrix, (size, size))
    marks = landmarks68(torch.from_numpy(crop[None]), net).numpy()[0]
    return transform_points(marks, invert_affine(matrix))


def paste(target: np.ndarray, donor: np.ndarray, marks_t: np.ndarray, marks_d: np.ndarray,
          region: str, mask: np.ndarray) -> np.ndarray:
    """The target photo (H, W, 3) uint8 with ``mask`` cut from the donor photo, moved so the
    group's landmarks meet the target's, Poisson-blended; uint8, as a saved photo would be."""
    pts = list(REGION_POINTS[region])
    t = image_to_array(target)
    tform = SimilarityTransform.from_estimate(marks_t[pts], marks_d[pts])
    if not tform:
        raise InvalidArgument("cannot fit a similarity transform between the two groups")
    moved = np.stack([warp(ch / 255.0, tform, output_shape=t.shape[1:], order=1, mode="edge",
                           preserve_range=True) * 255.0 for ch in image_to_array(donor)])
    blended = poisson_blend(t, moved, mask)
    return np.clip(blended.round(), 0, 255).astype(np.uint8).transpose(1, 2, 0)


class _Photos:
    """Photos, their located faces and photo-frame landmarks, each read once per build."""

    def __init__(self, pipe: FacePipeline, located: dict[Path, LocatedFace]) -> None:
        self.pipe, self.located, self.net = pipe, located, load_landmarks68()
        self._marks: dict[Path, np.ndarray] = {}

    def photo(self, path: Path) -> np.ndarray:
        return load_image(path)

    def marks(self, path: Path) -> np.ndarray:
        if path not in self._marks:
            self._marks[path] = photo_landmarks(self.pipe, self.net, self.photo(path),
                                                self.located[path])
        return self._marks[path]

    def crop(self, path: Path) -> np.ndarray:
        return warp_face_array(self.photo(path), self.located[path].detection.landmarks,
                               self.pipe.spec.alignment)

    def altered(self, crops: np.ndarray, paths: tuple[Path, Path], face: int, region: str,
                donor: Path, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The pair with ``face``'s photo pasted from ``donor`` and aligned again, and the
        pasted area in the new crop; None when the altered photo's face is not found."""
        new = paste(self.photo(paths[face]), self.photo(donor), self.marks(paths[face]),
                    self.marks(donor), region, mask)
        found = self.pipe.locate(new, policy="center", allow_fallback=True)
        if found.fallback:
            return None
        template = self.pipe.spec.alignment
        matrix = alignment_matrix(found.detection.landmarks, template)
        out = crops.copy()
        out[face] = np.clip(warp_face_array(new, found.detection.landmarks, template).round(),
                            0, 255)
        carried = warp_affine(mask[None].astype(np.float32), matrix,
                              (template.size, template.size))[0] > 0.5
        return out, carried


def build_box_set(pipe: FacePipeline, mining_pipe: FacePipeline, pairs: list[LfwPair],
                  female_names: set[str], images: Path, cache: DiskCache, n_altered: int = 300,
                  n_controls: int = 100, progress: bool = True,
                  folds: tuple[int, ...] = HELDOUT_FOLDS) -> PlantedSet:
    """The harder set on genuine pairs of ``folds`` (held-out by default): as
    ``build_planted_set``, with areas pasted into the photos before alignment."""
    genuine = [p for p in pairs if p.same and p.fold in folds]
    genuine.sort(key=lambda p: (p.fold, p.name_a, p.index_a, p.index_b))
    margin = planting_margin(pipe, pairs, images, cache, progress)
    photos = unique_images(pairs, images)
    mining, _ = embed_photos(mining_pipe, photos, cache, progress)
    donors = lookalike_donors(photos, female_names, mining)
    reader = _Photos(pipe, locate_all(pipe, photos, cache, progress))
    built = _Built()
    bar = tqdm(total=n_altered, desc=f"pasting ({pipe.spec.name})", disable=not progress)
    for i, p in enumerate(genuine):
        if built.counts["altered"] >= n_altered:
            break
        paths = (p.path_a(images), p.path_b(images))
        crops = np.clip(np.stack([reader.crop(q) for q in paths]).round(), 0, 255)
        face, person = i % 2, paths[i % 2].parent.name
        base = float(pipe.scorer.similarity(torch.from_numpy(crops)))
        pid = f"{paths[0].stem}|{paths[1].stem}"
        start = (i // 2) % len(REGIONS)
        for region in REGIONS[start:] + REGIONS[:start]:
            mask, outline = paste_mask(reader.marks(paths[face]), region,
                                       reader.photo(paths[face]).shape[:2],
                                       pair_rng(f"{pid}:{region}"))
            made = reader.altered(crops, paths, face, region, donors[person], mask)
            if made is None:
                continue
            altered, carried = made
            sim = float(pipe.scorer.similarity(torch.from_numpy(altered)))
            if base - sim < margin or not carried.any():
                continue
            donor = str(donors[person].relative_to(images))
            built.add(PlantedPair(pid, "altered", face, region, donor, base, sim, outline),
                      altered, carried)
            bar.update(1)
            own = [q for q in photos if q.parent.name == person and q not in paths]
            if own and built.counts["same-person"] < n_controls:
                same = reader.altered(crops, paths, face, region, own[0], mask)
                if same is not None:
                    sim = float(pipe.scorer.similarity(torch.from_numpy(same[0])))
                    built.add(PlantedPair(pid, "same-person", face, region,
                                          str(own[0].relative_to(images)), base, sim, outline),
                              *same)
            if built.counts["untouched"] < n_controls:
                built.add(PlantedPair(pid, "untouched", -1, region, "", base, base, outline),
                          crops, carried)
            break
    bar.close()
    return built.set(margin)
