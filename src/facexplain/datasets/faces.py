"""The faces of a data set's photos, located and embedded once and cached on disk.

Why in ``datasets``: the LFW benchmark, the trainers, the studies and the neuron analysis all
read the same per-image detections and embeddings; they used to import them from the LFW
benchmark, one layer up. Detections are cached per image (shared by all backbones),
embeddings per image, weights and flip. ``pipe`` is a ``pipeline.FacePipeline``, typed here by
the ``FaceSource`` protocol of what is read (the pipeline sits a layer above the data sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from tqdm import tqdm

from facexplain.align import warp_face
from facexplain.cache import DiskCache, image_key
from facexplain.errors import InputNotFound
from facexplain.io import load_image
from facexplain.types import Detection, LocatedFace

if TYPE_CHECKING:
    from facexplain.align.templates import Template


class _Spec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def alignment(self) -> Template: ...


class FaceSource(Protocol):
    """What the cache needs of a pipeline: its backbone, a detector and the embedder."""

    @property
    def spec(self) -> _Spec: ...

    def locate(self, image: np.ndarray, policy: str = ..., allow_fallback: bool = ...,
               source: str = ...) -> LocatedFace: ...

    def embedding_key(self) -> str: ...

    def embed(self, pixels: torch.Tensor, flip: bool = ...,
              batch_size: int = ...) -> torch.Tensor: ...

DETECTION_VERSION = "det-v1"
EMBEDDING_VERSION = "emb-v1"


def check_images_exist(paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputNotFound(f"image listed in the pairs file not found: {missing[0]}{more}")


def locate_all(
    pipe: FaceSource, paths: list[Path], cache: DiskCache, progress: bool
) -> dict[Path, LocatedFace]:
    """The LFW-convention face (closest to centre) of every image, cached on disk."""
    located: dict[Path, LocatedFace] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MTCNN's small convs only lose time to thread hand-offs
    try:
        for path in tqdm(paths, desc="detect", unit="img", disable=not progress):
            located[path] = _locate_cached(pipe, path, cache)
    finally:
        torch.set_num_threads(threads)
    return located


def _locate_cached(pipe: FaceSource, path: Path, cache: DiskCache) -> LocatedFace:
    key = f"{DETECTION_VERSION}:{image_key(path)}"
    hit = cache.get(key)
    if hit is not None:
        det = Detection(hit["box"], hit["landmarks"], float(hit["score"]))
        return LocatedFace(det, int(hit["n_faces"]), bool(hit["fallback"]))
    face = pipe.locate(load_image(path), policy="center", allow_fallback=True, source=str(path))
    d = face.detection
    cache.put(key, box=np.asarray(d.box, dtype=np.float64),
              landmarks=np.asarray(d.landmarks, dtype=np.float64),
              score=np.float64(d.score), n_faces=np.int64(face.n_faces),
              fallback=np.bool_(face.fallback))
    return face


def embed_all(
    pipe: FaceSource, located: dict[Path, LocatedFace], cache: DiskCache, flip: bool,
    batch_size: int, progress: bool,
) -> dict[Path, np.ndarray]:
    """Embeddings of every image's chosen face, cached per (image, weights, flip)."""
    tag = f"{EMBEDDING_VERSION}:{pipe.spec.name}@{pipe.embedding_key()}:flip={int(flip)}"
    embeddings: dict[Path, np.ndarray] = {}
    todo: list[Path] = []
    for path in located:
        hit = cache.get(f"{tag}:{image_key(path)}")
        if hit is None:
            todo.append(path)
        else:
            embeddings[path] = hit["embedding"]
    bar = tqdm(total=len(todo), desc=f"embed {pipe.spec.name}", unit="img", disable=not progress)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        pixels = torch.stack([
            warp_face(load_image(p), located[p].detection.landmarks, pipe.spec.alignment)
            for p in chunk
        ])
        emb = pipe.embed(pixels, flip=flip, batch_size=batch_size).numpy()
        for p, e in zip(chunk, emb, strict=True):
            cache.put(f"{tag}:{image_key(p)}", embedding=e.astype(np.float32))
            embeddings[p] = e
        bar.update(len(chunk))
    bar.close()
    return embeddings
