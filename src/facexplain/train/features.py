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


@dataclass(frozen=True)
class ShardPlan:
    """Where and under what name a feature set's shards are cached, and how they are computed:
    ``compute`` maps aligned faces (N, 3, S, S) to named tensors with N rows; ``check`` is the
    key whose row count tells a complete shard; ``key`` names the node(s) in the file hash."""

    directory: Path
    key: str
    tag: str
    weights: str
    compute: Callable[[torch.Tensor], dict[str, torch.Tensor]]
    check: str


def cached_shards(plan: ShardPlan, spec: BackboneSpec, paths: list[Path],
                  located: dict[Path, LocatedFace], transform: FaceTransform | None,
                  shard_size: int, desc: str, progress: bool) -> dict[str, torch.Tensor]:
    """Every tensor of ``plan`` for all ``paths``, in order: read from the shard cache or
    computed a shard at a time and stored (an interrupted run resumes where it stopped)."""
    plan.directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, torch.Tensor] = {}
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not progress)
    for start in range(0, len(paths), shard_size):
        chunk = paths[start : start + shard_size]
        file = _shard_file(plan.directory, spec, plan.key, chunk, plan.tag, plan.weights)
        shard = read_shard(file, plan.check, len(chunk))
        if shard is None:
            faces = aligned_batch(chunk, located, spec)
            if transform is not None:
                faces = transform(faces, np.arange(start, start + len(chunk)))
            shard = write_shard(file, plan.compute(faces))
        for key, value in shard.items():  # preallocated: a concatenation would hold all twice
            if key not in out:
                out[key] = torch.empty((len(paths), *value.shape[1:]), dtype=value.dtype)
            out[key][start : start + len(chunk)] = value
        bar.update(len(chunk))
    bar.close()
    if not out:
        raise ValueError("no images to extract features from")
    return out


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

    def compute(faces: torch.Tensor) -> dict[str, torch.Tensor]:
        m, e = maps_and_embeddings(model, faces, node, batch_size)
        return {"maps": m.half().contiguous(), "embeddings": e.contiguous()}

    directory = feature_dir(cache_dir, spec.name, node)
    plan = ShardPlan(directory / tag if tag else directory, node, tag,
                     model_fingerprint(model), compute, "maps")
    out = cached_shards(plan, spec, paths, located, transform, shard_size,
                        f"features {spec.name}:{node}", progress)
    return FeatureSet(list(paths), out["maps"], out["embeddings"])
