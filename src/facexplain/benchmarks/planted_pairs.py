"""Planted differences: genuine LFW pairs in which exactly one region of one face is replaced,
seamlessly, by the same region of a look-alike person, so the ground truth of "where do these
faces differ, and in which photo" is known.

Our counterpart of the field's inpainting game (XFR, Mery et al.) and patch-swap sets: instead of
an inpainting network we transplant a real person's region (68-point landmarks of both aligned
faces, a similarity fit of the region's points, Poisson blending), and instead of keeping the
alterations a second model calls non-mates we keep those that lower the explained model's
similarity by at least a margin, so the model demonstrably reacts to the planted region. The
margin is a fixed share (``MARGIN_SHARE``) of the backbone's own score spread (mean genuine minus
mean impostor cosine on LFW folds 1-5, which the game never plays): a fixed cosine would be 9%
of sface's spread and 43% of dlib-resnet's (``bench/score_spread.py``).
Controls: the same region transplanted from another photo of the *same* person (nothing should
light up beyond a genuine pair's usual differences) and the untouched pairs. Held-out impostor
pairs are appended when a set is played (``add_impostors``), for component findings.

Pairs come from LFW's held-out folds (6-10); the altered face alternates between A and B, the
regions are tried in an order that rotates from pair to pair (eyes, brows, nose, mouth) and the
first one that passes is kept (one altered version per pair); the donor is the altered person's most
similar other person of the same gender label among all LFW photos, by a mining model other
than the explained one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain.align import warp_face
from facexplain.align.landmarks68 import Landmarks68Net, landmarks68, load_landmarks68
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS
from facexplain.benchmarks.populations import embed_photos
from facexplain.cache import DiskCache
from facexplain.datasets.blend import align_donor, poisson_blend
from facexplain.datasets.face_regions import REGIONS, region_masks
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw import LfwPair, unique_images
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.scoring import cosine_rows
from facexplain.types import LocatedFace

PLANTED_VERSION = "planted-v3"  # v3: the margin scales with the backbone's score spread
MARGIN_SHARE = 0.087  # sface's 0.05 (the margin of v2, all backbones) over its spread, 0.576
LEGACY_MARGIN = 0.05  # sets saved before v3 kept alterations that lowered the cosine this much
REGION_POINTS = {"eyes": range(36, 48), "brows": range(17, 27), "nose": range(27, 36),
                 "mouth": range(48, 68)}
KINDS = ("altered", "same-person", "untouched", "impostor")


@dataclass(frozen=True)
class PlantedPair:
    """One pair of the game. ``face``: 0 or 1, the photo whose region was replaced (-1: none)."""

    pair_id: str
    kind: str
    face: int
    region: str
    donor: str
    original: float
    similarity: float
    outline: str = ""  # the harder set's pasted shape (rectangle, ellipse); "" otherwise

    @property
    def drop(self) -> float:
        return self.original - self.similarity


@dataclass
class PlantedSet:
    """The pairs, their aligned faces (N, 2, 3, S, S) uint8 and region masks (N, S, S) bool."""

    pairs: list[PlantedPair]
    faces: np.ndarray
    masks: np.ndarray
    margin: float = LEGACY_MARGIN  # the least similarity drop an altered pair had to show

    def tensor(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.faces[i].astype(np.float32))

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, faces=self.faces, masks=self.masks,
                            pairs=json.dumps([asdict(p) for p in self.pairs]),
                            margin=np.float64(self.margin))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> PlantedSet:
        with np.load(path) as data:
            pairs = [PlantedPair(**row) for row in json.loads(str(data["pairs"]))]
            margin = float(data["margin"]) if "margin" in data.files else LEGACY_MARGIN
            return cls(pairs, data["faces"], data["masks"], margin)


def impostor_pairs(pairs: list[LfwPair], n: int) -> list[LfwPair]:
    """The first ``n`` impostor pairs of the held-out folds, spread evenly over the folds."""
    by_fold = [[p for p in pairs if not p.same and p.fold == f] for f in HELDOUT_FOLDS]
    turns = zip_longest(*by_fold)  # the first of each fold, then the second of each, ...
    return [p for turn in turns for p in turn if p is not None][:max(n, 0)]


def add_impostors(game: PlantedSet, pipe: FacePipeline, pairs: list[LfwPair], images: Path,
                  cache: DiskCache, n: int, progress: bool = True) -> PlantedSet:
    """``game`` with ``n`` held-out impostor pairs appended (kind "impostor", no region): the
    pairs on which a component finding is right, so its rate is the hit rate, not an error."""
    chosen = impostor_pairs(pairs, n)
    if not chosen:
        return game
    located = locate_all(pipe, unique_images(chosen, images), cache, progress)
    rows, faces = [], []
    for p in chosen:
        paths = (p.path_a(images), p.path_b(images))
        crops = np.clip(np.stack([_crop(pipe, q, located[q].detection.landmarks)
                                  for q in paths]).round(), 0, 255)
        sim = float(pipe.scorer.similarity(torch.from_numpy(crops)))
        rows.append(PlantedPair(f"{paths[0].stem}|{paths[1].stem}", "impostor", -1, "", "",
                                sim, sim))
        faces.append(crops.astype(np.uint8))
    empty = np.zeros((len(rows), *game.masks.shape[1:]), dtype=bool)
    return PlantedSet(game.pairs + rows, np.concatenate([game.faces, np.stack(faces)]),
                      np.concatenate([game.masks, empty]), game.margin)


def _crop(pipe: FacePipeline, path: Path, landmarks: np.ndarray) -> np.ndarray:
    return warp_face(load_image(path), landmarks, pipe.spec.alignment).numpy()


def planting_margin(pipe: FacePipeline, pairs: list[LfwPair], images: Path, cache: DiskCache,
                    progress: bool = True) -> float:
    """``MARGIN_SHARE`` of the backbone's mean genuine minus mean impostor cosine over the pairs
    of LFW folds 1-5 (not the held-out folds the game is played on), to 0.001."""
    fit = [p for p in pairs if p.fold not in HELDOUT_FOLDS]
    if not any(p.same for p in fit) or all(p.same for p in fit):
        raise ValueError("the planting margin needs genuine and impostor pairs outside the "
                         "held-out folds")
    emb, _ = embed_photos(pipe, unique_images(fit, images), cache, progress)
    cos = cosine_rows(np.stack([emb[p.path_a(images)] for p in fit]),
                      np.stack([emb[p.path_b(images)] for p in fit]))
    same = np.array([p.same for p in fit])
    return round(MARGIN_SHARE * float(cos[same].mean() - cos[~same].mean()), 3)


def lookalike_donors(paths: list[Path], female_names: set[str],
                     mining: dict[Path, np.ndarray]) -> dict[str, Path]:
    """Each person's look-alike photo: the most similar photo of another person with the same
    gender label (cosine of the mining model's embeddings, averaged over the person's photos)."""
    unit = np.stack([mining[p] for p in paths]).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    ids = np.array([p.parent.name for p in paths])
    fem = np.array([p.name in female_names for p in paths])
    donors = {}
    for person in np.unique(ids):
        own = ids == person
        sim = unit @ unit[own].mean(axis=0)
        sim[own | (fem != fem[own][0])] = -2.0
        donors[str(person)] = paths[int(sim.argmax())]
    return donors


def transplant(target: np.ndarray, donor: np.ndarray, region: str, marks_t: np.ndarray,
               marks_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``target`` with ``region`` taken from ``donor`` (both aligned crops), and the mask."""
    mask = region_masks(marks_t, target.shape[-1])[region]
    pts = list(REGION_POINTS[region])
    moved = align_donor(donor, marks_d[pts], marks_t[pts])
    return poisson_blend(target, moved, mask), mask


def build_planted_set(pipe: FacePipeline, mining_pipe: FacePipeline, pairs: list[LfwPair],
                      female_names: set[str], images: Path, cache: DiskCache,
                      n_altered: int = 300, n_controls: int = 100,
                      progress: bool = True,
                      folds: tuple[int, ...] = HELDOUT_FOLDS) -> PlantedSet:
    """Alter held-out genuine pairs until ``n_altered`` pass the margin (one altered version
    per pair: the regions are tried in an order that rotates from pair to pair, the first that
    lowers the similarity enough is kept); add ``n_controls`` same-person transplants of that
    region and untouched pairs (first come). Donors and same-person photos come from the photos
    of LFW's pair list. ``folds``: the folds whose genuine pairs are altered (default the
    held-out 6-10; design choices use 1-5, so a method is not tuned on what it is scored on)."""
    genuine = [p for p in pairs if p.same and p.fold in folds]
    genuine.sort(key=lambda p: (p.fold, p.name_a, p.index_a, p.index_b))
    margin = planting_margin(pipe, pairs, images, cache, progress)
    photos = unique_images(pairs, images)
    mining, _ = embed_photos(mining_pipe, photos, cache, progress)
    donors = lookalike_donors(photos, female_names, mining)
    located = locate_all(pipe, photos, cache, progress)
    net = load_landmarks68()
    built = _Built()
    bar = tqdm(total=n_altered, desc=f"planting ({pipe.spec.name})", disable=not progress)
    for i, p in enumerate(genuine):
        if built.counts["altered"] >= n_altered:
            break
        paths = (p.path_a(images), p.path_b(images))
        crops = np.stack([_crop(pipe, q, located[q].detection.landmarks) for q in paths])
        face = i % 2
        person = paths[face].parent.name
        base = float(pipe.scorer.similarity(torch.from_numpy(crops)))
        start = (i // 2) % len(REGIONS)
        for region in REGIONS[start:] + REGIONS[:start]:
            altered, mask = _alter(pipe, net, crops, face, region, donors[person], located)
            sim = float(pipe.scorer.similarity(torch.from_numpy(altered)))
            if base - sim < margin:
                continue
            pid = f"{paths[0].stem}|{paths[1].stem}"
            donor = str(donors[person].relative_to(images))
            built.add(PlantedPair(pid, "altered", face, region, donor, base, sim), altered, mask)
            bar.update(1)
            own = [q for q in photos if q.parent.name == person and q not in paths]
            if own and built.counts["same-person"] < n_controls:
                same, mask = _alter(pipe, net, crops, face, region, own[0], located)
                sim = float(pipe.scorer.similarity(torch.from_numpy(same)))
                built.add(PlantedPair(pid, "same-person", face, region,
                                      str(own[0].relative_to(images)), base, sim), same, mask)
            if built.counts["untouched"] < n_controls:
                built.add(PlantedPair(pid, "untouched", -1, region, "", base, base),
                          np.clip(crops.round(), 0, 255), mask)
            break
    bar.close()
    return built.set(margin)


def _alter(pipe: FacePipeline, net: Landmarks68Net, crops: np.ndarray, face: int, region: str,
           donor_path: Path, located: dict[Path, LocatedFace]) -> tuple[np.ndarray, np.ndarray]:
    """The pair with ``region`` of ``face`` transplanted from ``donor_path``'s photo, rounded
    to whole pixel values as a saved photo would be, and the region's mask."""
    donor = _crop(pipe, donor_path, located[donor_path].detection.landmarks)
    marks = landmarks68(torch.from_numpy(np.stack([crops[face], donor])), net).numpy()
    new, mask = transplant(crops[face], donor, region, marks[0], marks[1])
    altered = crops.copy()
    altered[face] = new
    return np.clip(altered.round(), 0, 255), mask


class _Built:
    """The set under construction."""

    def __init__(self) -> None:
        self.pairs: list[PlantedPair] = []
        self.faces: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.counts = dict.fromkeys(KINDS, 0)

    def add(self, pair: PlantedPair, faces: np.ndarray, mask: np.ndarray) -> None:
        self.pairs.append(pair)
        self.faces.append(faces.astype(np.uint8))
        self.masks.append(mask)
        self.counts[pair.kind] += 1

    def set(self, margin: float) -> PlantedSet:
        return PlantedSet(self.pairs, np.stack(self.faces), np.stack(self.masks), margin)
