"""A frozen backbone's spatial maps and embeddings for many faces, computed once, kept on disk.

Why: heads train for many epochs and folds on a backbone that never changes, so its maps are
worth computing once. They are stored as float16 safetensors shards of a few hundred images,
each named by a hash of (version, backbone, node, image keys): an interrupted run resumes, and a
changed photo (new mtime) or a new backbone version simply misses the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain.align import warp_face
from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.backbones.spec import BackboneSpec
from facexplain.cache import image_key
from facexplain.io import load_image
from facexplain.types import LocatedFace

FEATURE_VERSION = "feat-v1"


@dataclass(frozen=True)
class FeatureSet:
    """Maps (N, C, h, w) float16 and embeddings (N, D) float32 of ``paths``, in that order."""

    paths: list[Path]
    maps: torch.Tensor
    embeddings: torch.Tensor


def feature_dir(cache_dir: Path, backbone: str, node: str) -> Path:
    return cache_dir / "xcos" / "features" / backbone / node.replace("/", "_")


# (aligned faces (N, 3, S, S), their indices in the full path list) -> transformed faces
FaceTransform = Callable[[torch.Tensor, np.ndarray], torch.Tensor]


def _shard_file(directory: Path, spec: BackboneSpec, node: str, chunk: list[Path],
                tag: str = "", weights: str = "") -> Path:
    """A shard's file, named by what it depends on: the images, node, transform and weights."""
    h = hashlib.sha1(f"{FEATURE_VERSION}|{spec.name}|{node}{f'|{tag}' if tag else ''}".encode())
    if weights:
        h.update(weights.encode())
    for p in chunk:
        h.update(image_key(p).encode())
    return directory / f"{h.hexdigest()}.safetensors"


def aligned_batch(paths: list[Path], located: dict[Path, LocatedFace],
                  spec: BackboneSpec) -> torch.Tensor:
    """The chosen face of each photo warped to the backbone's template, (N, 3, S, S)."""
    return torch.stack([
        warp_face(load_image(p), located[p].detection.landmarks, spec.alignment) for p in paths
    ])


@torch.inference_mode()
def maps_and_embeddings(model: FaceModel, pixels: torch.Tensor, node: str,
                        batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """One backbone pass giving the spatial map ``node`` and the embedding of each face."""
    maps, embs = [], []
    for start in range(0, pixels.shape[0], batch_size):
        out = model.forward_nodes(pixels[start : start + batch_size], (node, EMBEDDING))
        maps.append(out[node].float())
        embs.append(out[EMBEDDING].float())
    return torch.cat(maps), torch.cat(embs)


def read_shard(file: Path, key: str, rows: int) -> dict[str, torch.Tensor] | None:
    """A cached shard whose ``key`` has ``rows`` rows; None if missing, damaged or stale."""
    from safetensors.torch import load_file

    if not file.is_file():
        return None
    try:
        shard = load_file(str(file))
    except Exception:  # a damaged shard is recomputed
        return None
    return shard if key in shard and shard[key].shape[0] == rows else None


def write_shard(file: Path, shard: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Store a shard atomically (a killed run leaves no half-written file); returns it."""
    from safetensors.torch import save_file

    tmp = file.with_name(file.name + ".tmp")
    save_file(shard, str(tmp))
    tmp.replace(file)
    return shard


def extract_features(
    model: FaceModel, spec: BackboneSpec, node: str, paths: list[Path],
    located: dict[Path, LocatedFace], cache_dir: Path, shard_size: int = 256,
    batch_size: int = 32, progress: bool = True, transform: FaceTransform | None = None,
    tag: str = "",
) -> FeatureSet:
    """Maps of ``node`` and embeddings for every path, from the shard cache or computed.

    ``transform`` alters the aligned faces first (e.g. synthetic occlusion, deterministic in the
    image index); ``tag`` names it, so its shards are cached apart from the plain ones.
    """
    if transform is not None and not tag:
        raise ValueError("a face transform needs a tag naming it in the cache")
    from facexplain.explain.scorer import model_fingerprint

    weights = model_fingerprint(model)
    directory = feature_dir(cache_dir, spec.name, node)
    if tag:
        directory = directory / tag
    directory.mkdir(parents=True, exist_ok=True)
    maps: torch.Tensor | None = None
    embs: torch.Tensor | None = None
    bar = tqdm(total=len(paths), desc=f"features {spec.name}:{node}", unit="img",
               disable=not progress)
    for start in range(0, len(paths), shard_size):
        chunk = paths[start : start + shard_size]
        file = _shard_file(directory, spec, node, chunk, tag, weights)
        shard = read_shard(file, "maps", len(chunk))
        if shard is None:
            faces = aligned_batch(chunk, located, spec)
            if transform is not None:
                faces = transform(faces, np.arange(start, start + len(chunk)))
            m, e = maps_and_embeddings(model, faces, node, batch_size)
            shard = write_shard(file, {"maps": m.half().contiguous(),
                                       "embeddings": e.contiguous()})
        if maps is None or embs is None:
            maps = torch.empty((len(paths), *shard["maps"].shape[1:]), dtype=torch.float16)
            embs = torch.empty((len(paths), shard["embeddings"].shape[1]), dtype=torch.float32)
        maps[start : start + len(chunk)] = shard["maps"]
        embs[start : start + len(chunk)] = shard["embeddings"]
        bar.update(len(chunk))
    bar.close()
    if maps is None or embs is None:
        raise ValueError("no images to extract features from")
    return FeatureSet(list(paths), maps, embs)
