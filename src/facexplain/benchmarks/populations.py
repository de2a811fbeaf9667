"""Scored pair populations for calibration: LFW's folds, look-alike impostors mined per fold,
and Yale's grey-level studio photos, each with the scope traits of every photo.

Why these three: LFW's View 2 is what the shipped confidence is fitted on; the look-alike set
keeps LFW's genuine pairs but replaces each fold's impostors with its 300 hardest same-gender
impostor pairs (SLLFW's construction), mined by a *different* model than the one calibrated so
the set is not tuned to its blind spots; Yale (15 people, grey, studio light) is unlike both.
Folds of the look-alike set are LFW's folds (mined within each fold's photos), so a calibrator
fitted on LFW's other folds has never seen their people.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facexplain.align import warp_face
from facexplain.benchmarks.lookalike import nearest_impostors
from facexplain.cache import DiskCache, image_key
from facexplain.confidence.scope import FaceTraits, channel_spread
from facexplain.datasets.faces import embed_all, locate_all
from facexplain.datasets.lfw import LfwPair, unique_images
from facexplain.datasets.lfw_people import read_female_names
from facexplain.errors import InputNotFound
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.scoring import cosine_rows
from facexplain.types import LocatedFace

TRAITS_VERSION = "traits-v1"
LOOKALIKES_PER_FOLD = 300


@dataclass(frozen=True)
class Population:
    """Scores, labels, folds (-1: none) and the traits of both photos of every pair."""

    name: str
    description: str
    scores: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    traits: list[tuple[FaceTraits, FaceTraits]]

    def __len__(self) -> int:
        return int(self.scores.size)


def image_traits(pipe: FacePipeline, paths: list[Path], located: dict[Path, LocatedFace],
                 embeddings: dict[Path, np.ndarray], cache: DiskCache,
                 progress: bool) -> dict[Path, FaceTraits]:
    """Scope traits of every photo (grey-level is read off the aligned crop, cached)."""
    out = {}
    for p in tqdm(paths, desc="traits", unit="img", disable=not progress):
        face = located[p]
        key = f"{TRAITS_VERSION}:{pipe.spec.alignment.name}:{image_key(p)}"
        hit = cache.get(key)
        if hit is None:
            crop = warp_face(load_image(p), face.detection.landmarks, pipe.spec.alignment)
            hit = {"spread": np.asarray(channel_spread(crop.numpy()), dtype=np.float64)}
            cache.put(key, **hit)
        det = face.detection
        eyes = 0.0 if face.fallback else float(np.linalg.norm(det.landmarks[1] - det.landmarks[0]))
        out[p] = FaceTraits(bool(float(hit["spread"]) < 3.0), eyes,
                            0.0 if face.fallback else float(det.score),
                            float(np.linalg.norm(embeddings[p])))
    return out


def embed_photos(pipe: FacePipeline, paths: list[Path], cache: DiskCache, progress: bool
                 ) -> tuple[dict[Path, np.ndarray], dict[Path, FaceTraits]]:
    """Embeddings (raw) and traits of photos, through the shared detection/embedding caches."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputNotFound(f"photo not found: {missing[0]}")
    located = locate_all(pipe, paths, cache, progress)
    embeddings = embed_all(pipe, located, cache, False, 32, progress)
    return embeddings, image_traits(pipe, paths, located, embeddings, cache, progress)


def _scored(name: str, description: str, pairs: list[tuple[Path, Path, bool, int]],
            emb: dict[Path, np.ndarray], traits: dict[Path, FaceTraits]) -> Population:
    a = np.stack([emb[p[0]] for p in pairs])
    b = np.stack([emb[p[1]] for p in pairs])
    return Population(name, description, cosine_rows(a, b),
                      np.asarray([p[2] for p in pairs]), np.asarray([p[3] for p in pairs]),
                      [(traits[p[0]], traits[p[1]]) for p in pairs])


def lfw_population(pipe: FacePipeline, pairs: list[LfwPair], images: Path, cache: DiskCache,
                   progress: bool) -> tuple[Population, dict[Path, FaceTraits]]:
    paths = unique_images(pairs, images)
    emb, traits = embed_photos(pipe, paths, cache, progress)
    rows = [(p.path_a(images), p.path_b(images), p.same, p.fold) for p in pairs]
    return _scored("lfw", "LFW View 2 (pairs.txt), 10 folds", rows, emb, traits), traits


def lookalike_pairs(pairs: list[LfwPair], images: Path, mining: dict[Path, np.ndarray],
                    female_names: set[str]) -> list[tuple[Path, Path, bool, int]]:
    """Each fold's genuine pairs plus its hardest same-gender impostor pairs, mined by the
    ``mining`` embeddings among the fold's own photos (one pair per two people)."""
    out = []
    for fold in sorted({p.fold for p in pairs}):
        in_fold = [p for p in pairs if p.fold == fold]
        out += [(p.path_a(images), p.path_b(images), True, fold) for p in in_fold if p.same]
        photos = sorted({q for p in in_fold for q in (p.path_a(images), p.path_b(images))})
        unit = np.stack([mining[q] for q in photos]).astype(np.float32)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        ids = [q.parent.name for q in photos]
        fem = [q.name in female_names for q in photos]
        mined = nearest_impostors(unit, ids, fem)[:LOOKALIKES_PER_FOLD]
        out += [(photos[i], photos[j], False, fold) for i, j, _ in mined]
    return out


def lookalike_population(pipe: FacePipeline, mining_pipe: FacePipeline, pairs: list[LfwPair],
                         images: Path, female_file: Path, cache: DiskCache,
                         progress: bool) -> Population:
    paths = unique_images(pairs, images)
    mining, _ = embed_photos(mining_pipe, paths, cache, progress)
    rows = lookalike_pairs(pairs, images, mining, read_female_names(female_file))
    emb, traits = embed_photos(pipe, paths, cache, progress)
    return _scored("lookalike", f"look-alike LFW pairs: each fold's genuine pairs and its "
                   f"{LOOKALIKES_PER_FOLD} hardest same-gender impostors mined by "
                   f"{mining_pipe.spec.name}", rows, emb, traits)


def lfw_and_lookalike(pipe: FacePipeline, mining_pipe: FacePipeline, lfw_root: Path,
                      cache: DiskCache, progress: bool
                      ) -> tuple[Population, dict[Path, FaceTraits], Population]:
    """LFW's 6,000 pairs (with each photo's traits) and the look-alike set mined by
    ``mining_pipe``: what ``benchmark calibration`` and ``benchmark lr`` both score."""
    from facexplain.datasets.lfw import read_pairs

    pairs = read_pairs(lfw_root / "pairs.txt")
    images = lfw_root / "lfw-deepfunneled"
    lfw, traits = lfw_population(pipe, pairs, images, cache, progress)
    look = lookalike_population(pipe, mining_pipe, pairs, images,
                                lfw_root / "female_names.txt", cache, progress)
    return lfw, traits, look


def yale_population(pipe: FacePipeline, root: Path, cache: DiskCache, progress: bool,
                    seed: int = 0) -> Population:
    """Every same-person pair of the Yale faces and as many random different-person pairs."""
    photos = sorted(p for p in root.glob("subject*") if p.is_file())
    if not photos:
        raise InputNotFound(f"no Yale photos (subjectNN.condition) in {root}")
    emb, traits = embed_photos(pipe, photos, cache, progress)
    person = [p.name.split(".")[0] for p in photos]
    same = [(a, b) for a, b in combinations(range(len(photos)), 2) if person[a] == person[b]]
    other = [(a, b) for a, b in combinations(range(len(photos)), 2) if person[a] != person[b]]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(other), size=min(len(same), len(other)), replace=False)
    rows = [(photos[a], photos[b], True, -1) for a, b in same]
    rows += [(photos[other[k][0]], photos[other[k][1]], False, -1) for k in sorted(picked)]
    return _scored("yale", f"Yale faces ({len(photos)} grey studio photos of "
                   f"{len(set(person))} people)", rows, emb, traits)
