"""The three backbone maps the part-filter head reads, for many faces, computed once and kept.

Why: the head trains for many epochs on a frozen backbone, four ablation variants at a time;
one backbone pass per face (and one per occluded face) is all it needs. Shards are float16
safetensors named by what they depend on (images, nodes, weights, occlusion), as
``train.features`` does for the xCos head, so an interrupted run resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facexplain.align.warp import alignment_matrix, transform_points
from facexplain.backbones.base import FaceModel
from facexplain.backbones.spec import BackboneSpec
from facexplain.datasets.occlusion import apply_mask
from facexplain.datasets.warped_occlusion import RectangleWarper
from facexplain.heads.parts import head_inputs
from facexplain.train.features import ShardPlan, cached_shards
from facexplain.types import LocatedFace

KEYS = ("early", "middle", "late", "embedding")


@dataclass(frozen=True)
class HeadInputs:
    """Per face: early (pooled to the grid), middle and late maps (float16), embedding."""

    early: torch.Tensor
    middle: torch.Tensor
    late: torch.Tensor
    embedding: torch.Tensor

    def take(self, index: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return self.early[idx], self.middle[idx], self.late[idx]


def aligned_landmarks(located: LocatedFace, spec: BackboneSpec) -> np.ndarray:
    """The detected five points in the aligned crop's pixels."""
    marks = located.detection.landmarks
    return transform_points(marks, alignment_matrix(marks, spec.alignment))


RectangleChooser = Callable[[int], np.ndarray]  # image index -> template corners (4, 2)


def rectangle_occluder(spec: BackboneSpec, template: np.ndarray, marks: np.ndarray,
                       choose: RectangleChooser) -> Callable[[torch.Tensor, np.ndarray],
                                                             torch.Tensor]:
    """Black out, in each aligned face ``i``, the template rectangle ``choose(i)`` warped
    through the mesh over its landmarks ``marks[i]`` (5 or 68 points; ``template`` alike)."""
    warper = RectangleWarper(template, spec.input_size)

    def occlude(faces: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        out = faces.clone()
        for k, i in enumerate(indices):
            out[k] = apply_mask(faces[k], warper.mask(choose(int(i)), marks[int(i)]))
        return out

    return occlude


def landmarks68_of(spec: BackboneSpec, paths: list[Path], located: dict[Path, LocatedFace],
                   cache_dir: Path, progress: bool = True) -> np.ndarray:
    """face-api's 68 points (N, 68, 2) on every aligned crop, in its pixels: the paper's mesh.
    Computed once, in shards beside the head inputs (a rerun reads them back)."""
    from facexplain.align.landmarks68 import landmarks68, load_landmarks68

    net = load_landmarks68()
    plan = ShardPlan(cache_dir / "parts" / "landmarks68" / spec.name, "landmarks68", "",
                     "face-api-68", lambda faces: {"landmarks68": landmarks68(faces, net)},
                     "landmarks68")
    out = cached_shards(plan, spec, paths, located, None, 256, f"68 landmarks {spec.name}",
                        progress)
    return out["landmarks68"].numpy().astype(np.float64)


@torch.inference_mode()
def extract_head_inputs(
    model: FaceModel, spec: BackboneSpec, nodes: tuple[str, str, str], grid: int,
    paths: list[Path], located: dict[Path, LocatedFace], cache_dir: Path,
    transform: Callable[[torch.Tensor, np.ndarray], torch.Tensor] | None = None, tag: str = "",
    shard_size: int = 256, batch_size: int = 32, progress: bool = True,
) -> HeadInputs:
    """Maps and embeddings of every path, from the shard cache or computed."""
    from facexplain.explain.scorer import model_fingerprint

    def compute(faces: torch.Tensor) -> dict[str, torch.Tensor]:
        outs: dict[str, list[torch.Tensor]] = {k: [] for k in KEYS}
        for b in range(0, faces.shape[0], batch_size):
            for key, value in zip(KEYS, head_inputs(model, faces[b : b + batch_size], nodes,
                                                    grid), strict=True):
                outs[key].append(value)
        return {k: torch.cat(v).half().contiguous() if k != "embedding"
                else torch.cat(v).contiguous() for k, v in outs.items()}

    plan = ShardPlan(cache_dir / "parts" / "features" / spec.name / (tag or "clean"),
                     "+".join(nodes) + f"@{grid}", tag, model_fingerprint(model), compute,
                     "embedding")
    out = cached_shards(plan, spec, paths, located, transform, shard_size,
                        f"head inputs {spec.name} {tag or 'clean'}", progress)
    return HeadInputs(*(out[k] for k in KEYS))
