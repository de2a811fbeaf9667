"""Photos scored for quality: LFW's pair photos and seeded degraded copies of them.

Why cached per photo: the quality components, the embedding-stability score and the embedding
of ~7,700 LFW photos and ~3,600 degraded copies take minutes; ``benchmark quality`` on a second
backbone or a re-run reads them back. Degraded copies are written once as PNG files under the
cache folder (``degraded-v1``), named by pair and kind, and go through the normal detection,
alignment and embedding, as a user's photo would (a photo in which no face is found gets the
LFW convention's centred guess, as every LFW photo does here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facexplain.align import warp_face
from facexplain.cache import DiskCache, image_key
from facexplain.datasets.degrade import KINDS, degrade_photo
from facexplain.datasets.faces import embed_all, locate_all
from facexplain.datasets.lfw import LfwPair
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.quality.assess import raw_components
from facexplain.quality.measures import COMPONENTS
from facexplain.quality.unified import stability
from facexplain.types import AlignedFace, LocatedFace

QUALITY_VERSION = "quality-v1"
DEGRADED_VERSION = "degraded-v1"


@dataclass(frozen=True)
class PhotoScores:
    """Per photo (rows in ``paths`` order): components (N, len(COMPONENTS)), stability (N,),
    embeddings (N, D) and how many of eyes/nose/mouth the occlusion check hid."""

    paths: list[Path]
    values: np.ndarray
    stability: np.ndarray
    embeddings: np.ndarray

    def index(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}

    def column(self, name: str) -> np.ndarray:
        return self.values[:, COMPONENTS.index(name)]


def _aligned(pipe: FacePipeline, path: Path, face: LocatedFace) -> AlignedFace:
    crop = warp_face(load_image(path), face.detection.landmarks, pipe.spec.alignment)
    return AlignedFace(crop.numpy(), str(path), face.detection, face.n_faces)


def score_photos(pipe: FacePipeline, paths: list[Path], cache: DiskCache, progress: bool,
                 label: str = "quality", stability_for: set[Path] | None = None,
                 chunk: int = 64) -> PhotoScores:
    """Components and embedding of every photo and, for the photos in ``stability_for`` (all
    when None), the stability score (five more forward passes each, so the benchmark takes it
    on a sample); NaN elsewhere. Cached per photo and weights."""
    located = locate_all(pipe, paths, cache, progress)
    emb = embed_all(pipe, located, cache, False, 32, progress)
    tag = f"{QUALITY_VERSION}:{pipe.spec.name}@{pipe.embedding_key()}"
    values = np.full((len(paths), len(COMPONENTS)), np.nan)
    stab = np.full(len(paths), np.nan)
    todo: list[int] = []
    for i, path in enumerate(paths):
        hit = cache.get(f"{tag}:{image_key(path)}")
        if hit is None:
            todo.append(i)
        else:
            values[i] = hit["values"]
    bar = tqdm(total=len(todo), desc=label, unit="img", disable=not progress)
    for start in range(0, len(todo), chunk):
        rows = todo[start:start + chunk]
        faces = [_aligned(pipe, paths[i], located[paths[i]]) for i in rows]
        vals, _, _ = raw_components(faces, pipe.spec.alignment)
        for i, v in zip(rows, vals, strict=True):
            values[i] = [v[c] for c in COMPONENTS]
            cache.put(f"{tag}:{image_key(paths[i])}", values=values[i])
        bar.update(len(rows))
    bar.close()
    wanted = [i for i, p in enumerate(paths) if stability_for is None or p in stability_for]
    for i in tqdm(wanted, desc=f"{label}: stability", unit="img", disable=not progress):
        key = f"stability-v1:{tag}:{image_key(paths[i])}"
        hit = cache.get(key)
        if hit is None:
            face = _aligned(pipe, paths[i], located[paths[i]])
            hit = {"stability": stability(pipe.embed_arrays, face.array[None],
                                          emb[paths[i]][None])}
            cache.put(key, **hit)
        stab[i] = float(np.asarray(hit["stability"]).ravel()[0])
    return PhotoScores(paths, values, stab, np.stack([emb[p] for p in paths]))


def degraded_copies(pairs: list[LfwPair], images: Path, folder: Path, cache: DiskCache,
                    pipe: FacePipeline, progress: bool, seed: int = 0
                    ) -> list[tuple[int, Path, Path, str]]:
    """For each pair (index into ``pairs``): photo B degraded by kind ``i mod 6``, seeded by
    the pair's index. Returns (pair index, clean B, degraded B, kind); files are made once."""
    out = []
    located: dict[Path, LocatedFace] | None = None
    for i, p in enumerate(tqdm(pairs, desc="degrade", unit="img", disable=not progress)):
        kind = KINDS[i % len(KINDS)]
        clean = p.path_b(images)
        target = folder / DEGRADED_VERSION / kind / f"{i:05d}-{clean.stem}.png"
        if not target.is_file():
            if located is None:
                located = {}
            if clean not in located:
                located.update(locate_all(pipe, [clean], cache, False))
            rng = np.random.default_rng([seed, i])
            eyes = located[clean].detection.landmarks[:2]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part.png")
            Image.fromarray(degrade_photo(load_image(clean), kind, rng, eyes)).save(tmp)
            tmp.replace(target)
        out.append((i, clean, target, kind))
    return out
