"""The interpretable part-filter head (Yin et al., "Towards Interpretable Face Recognition").

Why: a cosine of opaque embeddings cannot say *which part* of two faces disagrees. This head
learns a representation whose every dimension is one filter tied to one face region: a
hypercolumn Φ of three backbone maps (early, middle, late) on one grid, N_f filters Ψ over it,
large-magnitude filtering (LMF: zero the d% smallest responses of each channel) and global
average pooling to f. Trained with spatial activation diversity (SAD) and feature activation
diversity (FAD) losses (``losses.diversity``), each f_i then answers "does the <part> match?".

The backbone stays frozen (its three maps are computed once, ``train.parts``); the head is
small enough to train on a CPU. The early map is average-pooled to the grid when it is finer,
the late map goes through a 1x1 conv and is upsampled bilinearly (the paper's "conv upsampling").
Checkpoints are safetensors with the config in their metadata, like the xCos head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.backbones.builtin import builtin_specs
from facexplain.backbones.registry import get_spec
from facexplain.errors import InvalidArgument
from facexplain.heads.store import HeadStore

if TYPE_CHECKING:
    from facexplain.heads.parts_tail import BackboneTail

# "base-aug": the paper's augmented baseline ("Base CNN aug."), the identity loss on clean and
# on occluded faces, no SAD, no FAD
VARIANTS = ("base", "base-aug", "sad", "fad", "sad+fad")


def nodes_for(backbone: str) -> tuple[str, str, str]:
    """The (early, middle, late) maps of a backbone's head (its row's ``part_layers``); the
    grid is the middle map's size."""
    layers = get_spec(backbone).part_layers
    if len(layers) != 3:
        known = [name for name, spec in builtin_specs().items() if len(spec.part_layers) == 3]
        raise InvalidArgument(f"no part-filter nodes known for backbone '{backbone}'; built in: "
                              f"{', '.join(known)}")
    return layers[0], layers[1], layers[2]


@dataclass(frozen=True)
class PartsHeadConfig:
    """Shape of one head; stored in its checkpoint so it can be rebuilt."""

    backbone: str
    nodes: tuple[str, str, str]
    in_channels: tuple[int, int, int]
    grid: int
    late_size: int
    n_filters: int = 128
    branch_channels: int = 48
    lmf_drop: float = 0.5  # d: share of each channel's cells zeroed by LMF
    n_classes: int = 1
    # the unfrozen trial: the backbone's layers from the middle map to the late one are part
    # of the head and trained with it (``heads.parts_tail``); the late input is then ignored
    tail: bool = False


def lmf(psi: torch.Tensor, drop: float) -> torch.Tensor:
    """Large-magnitude filtering: per image and channel, zero the ``drop`` share of cells with
    the smallest |response|; the kept cells pass gradients unchanged."""
    if not 0.0 <= drop < 1.0:
        raise InvalidArgument(f"LMF drop must be in [0, 1), got {drop}")
    n, c, h, w = psi.shape
    k = int(drop * h * w)
    if k == 0:
        return psi
    mags = psi.detach().abs().reshape(n, c, h * w)
    threshold = mags.kthvalue(k, dim=2, keepdim=True).values
    keep = (mags > threshold).reshape(n, c, h, w)
    return psi * keep


class PartsHead(nn.Module):
    """Φ -> Ψ -> LMF -> average pool: f (N, N_f), one dimension per part filter."""

    def __init__(self, config: PartsHeadConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.in_channels
        b = config.branch_channels
        self.early = nn.Sequential(nn.Conv2d(c1, b, 1), nn.BatchNorm2d(b), nn.ReLU())
        self.middle = nn.Sequential(nn.Conv2d(c2, b, 1), nn.BatchNorm2d(b), nn.ReLU())
        self.late = nn.Sequential(nn.Conv2d(c3, b, 1), nn.BatchNorm2d(b), nn.ReLU())
        self.filters = nn.Conv2d(3 * b, config.n_filters, 3, padding=1, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02)  # the paper's initialisation
        self.tail: BackboneTail | None = None
        if config.tail:
            from facexplain.heads.parts_tail import BackboneTail

            self.tail = BackboneTail(config.backbone, config.nodes[1], config.nodes[2])

    def hypercolumn(self, early: torch.Tensor, middle: torch.Tensor,
                    late: torch.Tensor) -> torch.Tensor:
        g = self.config.grid
        if self.tail is not None:
            late = self.tail(middle)
        if early.shape[-1] != g:
            early = F.adaptive_avg_pool2d(early.float(), g)
        up = F.interpolate(self.late(late.float()), size=(g, g), mode="bilinear",
                           align_corners=False)
        return torch.cat([self.early(early.float()), self.middle(middle.float()), up], dim=1)

    def responses(self, early: torch.Tensor, middle: torch.Tensor,
                  late: torch.Tensor) -> torch.Tensor:
        """ψ = F * Φ, (N, N_f, g, g), before LMF."""
        return self.filters(self.hypercolumn(early, middle, late))

    def embed(self, psi: torch.Tensor) -> torch.Tensor:
        """f = average pool of LMF(ψ), (N, N_f)."""
        return lmf(psi, self.config.lmf_drop).mean(dim=(2, 3))

    def forward(self, early: torch.Tensor, middle: torch.Tensor,
                late: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        psi = self.responses(early, middle, late)
        return psi, self.embed(psi)


@torch.no_grad()
def head_inputs(model: FaceModel, faces: torch.Tensor, nodes: tuple[str, str, str],
                grid: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One backbone pass over aligned faces (N, 3, S, S): (early pooled to the grid, middle,
    late, embedding), the inputs of ``PartsHead`` and the backbone's own embedding."""
    out = model.forward_nodes(faces, (*nodes, EMBEDDING))
    early = out[nodes[0]].float()
    if early.shape[-1] != grid:
        early = F.adaptive_avg_pool2d(early, grid)
    return early, out[nodes[1]].float(), out[nodes[2]].float(), out[EMBEDDING].float()


# Default head: sad+fad trained on all of LFW, else on 'half1', else the quick one (first use).
PARTS_HEADS = HeadStore("parts", "part-filter head", "facexplain train parts",
                        ("sad+fad-all", "sad+fad-half1", "sad+fad-quick"))


def checkpoint_path(backbone: str, variant: str, fold: str = "all",
                    root: Path | None = None) -> Path:
    """``<home>/parts/<backbone>/<variant>-<fold>.safetensors`` (fold: 'all', 'half1'...)."""
    if variant not in VARIANTS:
        raise InvalidArgument(f"unknown head variant '{variant}'; valid: {', '.join(VARIANTS)}")
    return PARTS_HEADS.path(backbone, f"{variant}-{fold}", root)


def save_head(head: PartsHead, path: Path, extra: dict[str, object] | None = None) -> Path:
    """Weights, config and training facts, digest and JSON twin (``HeadStore.save``)."""
    return PARTS_HEADS.save(head, head.config, path, extra)


def load_head(path: Path) -> tuple[PartsHead, dict[str, object]]:
    """Rebuild a head (eval mode) and its metadata from a checkpoint."""
    state, meta = PARTS_HEADS.load(path)
    cfg = dict(meta["config"])
    cfg["nodes"] = tuple(cfg["nodes"])
    cfg["in_channels"] = tuple(cfg["in_channels"])
    head = PartsHead(PartsHeadConfig(**cfg))
    head.load_state_dict(state)
    return head.eval(), meta


def default_checkpoint(backbone: str, root: Path | None = None) -> Path:
    """The sad+fad head trained on all of LFW, else the one trained on 'half1', else the quick
    head made on first use."""
    return PARTS_HEADS.default(backbone, root)
