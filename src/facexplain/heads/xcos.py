"""The xCos head (Lin et al., "xCos: An Explainable Cosine Metric for Face Verification").

Why: a plain cosine is one opaque number. xCos writes the pair score as a sum of local parts,
``xCos = <S, W>_F``: S holds the cosine of each grid cell's features between the two faces (which
parts look alike), W an attention map summing to one (how much each part counts). Here the head
sits on a frozen backbone's last spatial map (e.g. sface's 7x7x1024): a 1x1 conv to 32 channels
gives the grid features F (Eq. 1), and W is one of

- U: uniform, 1/(h*w) (Eq. 3);
- P: per cell, the Pearson correlation over training pairs between the cell cosine and the
  teacher's cosine (Eqs. 5-6), negatives clipped to zero, normalised to sum one;
- L: learned (Sec. 4.1): a 3x3 conv to 16 channels per face, concatenated, two 3x3 convs to one
  channel, softmax over the h*w cells. We average the logits of both concatenation orders, so
  xCos(A, B) = xCos(B, A) like the cosine it replaces.

Checkpoints are safetensors files whose metadata carries the config that rebuilds the head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from facexplain.datasets.lfw import N_FOLDS
from facexplain.errors import InvalidArgument
from facexplain.heads.store import HeadStore

ATTENTION_KINDS = ("U", "P", "L")
# How the attention's 3x3 convs pad the grid. Zeros let them tell border and corner cells from
# the rest by position alone; "replicate" repeats the edge cells' own features instead.
PADDINGS = ("zeros", "replicate")


def cell_cosine(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """S: cosine between the two faces' features in each grid cell, (N, C, h, w) -> (N, h, w)."""
    if fa.shape != fb.shape or fa.ndim != 4:
        raise InvalidArgument(f"need two (N, C, h, w) grids, got {tuple(fa.shape)}, "
                              f"{tuple(fb.shape)}")
    return F.cosine_similarity(fa, fb, dim=1, eps=1e-8)


def uniform_attention(h: int, w: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U (Eq. 3): every cell weighs 1/(h*w)."""
    return torch.full((h, w), 1.0 / (h * w), dtype=dtype)


def pearson_attention(cells: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """P (Eqs. 5-6) from cell cosines (N, h, w) and teacher cosines (N,) of the same pairs.

    A cell whose similarity tracks the teacher's verdict earns weight; anti-correlated cells get
    none (clipped at zero) so that W stays a set of non-negative shares summing to one. If no cell
    correlates positively, U is returned.
    """
    if cells.ndim != 3 or teacher.shape != cells.shape[:1] or cells.shape[0] < 2:
        raise InvalidArgument(f"need (N>=2, h, w) cells and (N,) teacher, got "
                              f"{tuple(cells.shape)}, {tuple(teacher.shape)}")
    x = cells.double() - cells.double().mean(dim=0)
    y = (teacher.double() - teacher.double().mean())[:, None, None]
    r = (x * y).sum(0) / ((x.pow(2).sum(0) * y.pow(2).sum()).sqrt() + 1e-12)
    r = r.clamp(min=0.0)
    if float(r.sum()) <= 0.0:
        return uniform_attention(int(cells.shape[1]), int(cells.shape[2]), cells.dtype)
    return (r / r.sum()).to(cells.dtype)


def xcos_score(s: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """<S, W>_F per pair: (N, h, w) x (N, h, w) or (h, w) -> (N,)."""
    return (s * w).sum(dim=(-2, -1))


class AttentionNet(nn.Module):
    """M_attention of Sec. 4.1: the learned map L, a softmax over the grid cells.

    The first fused conv acts on the concatenation [r_A, r_B]; we apply its two halves of input
    channels to each face separately (``parts``) and add them per pair (``combine``). That is the
    same function, but the 3x3 convs then run once per face instead of once per pair, which
    matters when training compares each face with many others.
    """

    def __init__(self, grid_channels: int = 32, reduced_channels: int = 16,
                 symmetric: bool = True, padding: str = "zeros") -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise InvalidArgument(f"unknown attention padding '{padding}'; valid: "
                                  f"{', '.join(PADDINGS)}")
        self.symmetric = symmetric
        self.padding = padding
        mode = cast(Literal["zeros", "replicate"], padding)
        self.reduce = nn.Conv2d(grid_channels, reduced_channels, 3, padding=1, padding_mode=mode)
        self.fuse1 = nn.Conv2d(2 * reduced_channels, 2 * reduced_channels, 3, padding=1)
        self.fuse2 = nn.Conv2d(2 * reduced_channels, 1, 3, padding=1, padding_mode=mode)
        # L starts as U: training moves attention only where that fits the teacher better.
        nn.init.zeros_(self.fuse2.weight)
        assert self.fuse2.bias is not None
        nn.init.zeros_(self.fuse2.bias)

    def parts(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per face: fuse1's response to it in the first slot (with bias) and in the second."""
        r = self.reduce(f)
        k = r.shape[1]
        w = self.fuse1.weight
        if self.padding != "zeros":  # pad once, then the split convs run unpadded
            r = F.pad(r, (1, 1, 1, 1), mode=self.padding)
            return (F.conv2d(r, w[:, :k], self.fuse1.bias), F.conv2d(r, w[:, k:], None))
        first = F.conv2d(r, w[:, :k], self.fuse1.bias, padding=1)
        second = F.conv2d(r, w[:, k:], None, padding=1)
        return first, second

    def combine(self, part_a: tuple[torch.Tensor, torch.Tensor],
                part_b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Logits (N, h, w) of L for pairs whose faces' ``parts`` are given."""
        out = self.fuse2(F.relu(part_a[0] + part_b[1]))
        if self.symmetric:
            out = (out + self.fuse2(F.relu(part_b[0] + part_a[1]))) / 2
        return out[:, 0]

    def logits(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        return self.combine(self.parts(fa), self.parts(fb))

    def forward(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        return cell_softmax(self.logits(fa, fb))


def cell_softmax(z: torch.Tensor) -> torch.Tensor:
    """Softmax over the h*w cells of each (h, w) map in (N, h, w)."""
    n, h, w = z.shape
    return torch.softmax(z.reshape(n, h * w), dim=1).reshape(n, h, w)


class CellwiseConv1x1(nn.Module):
    """A 1x1 convolution whose weights differ per cell (a locally connected 1x1 layer).

    Why: on a frozen backbone the last map's channels mean different things at different
    places (its own embedding is a flatten + FC with weights per position), which one shared
    1x1 projection cannot undo; the paper trains the backbone with the head instead.
    """

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_channels)
        self.weight = nn.Parameter(
            torch.empty(height, width, out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, height, width).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,hwgc->nghw", x, self.weight) + self.bias


@dataclass(frozen=True)
class XCosHeadConfig:
    """What rebuilds a head: its sizes, and which backbone map and teacher it was trained for."""

    in_channels: int
    height: int
    width: int
    grid_channels: int = 32
    reduced_channels: int = 16
    symmetric: bool = True
    # One 1x1 projection per cell instead of one shared by all cells (see CellwiseConv1x1).
    cell_specific: bool = False
    attention_padding: str = "zeros"
    # W from its own shared 1x1 projection of the map (True) instead of the grid features F.
    # With a cell-specific grid, F carries a per-cell code that lets W learn a positional prior
    # (peaks on the bottom corners); a shared projection reads content only.
    attention_shared: bool = False
    backbone: str = ""
    node: str = ""
    teacher: str = ""


@dataclass(frozen=True)
class XCosOutput:
    """One batch of pairs through the head: S, W (both (N, h, w)) and xCos = <S, W> (N,)."""

    similarity: torch.Tensor
    attention: torch.Tensor
    score: torch.Tensor


class XCosHead(nn.Module):
    """Grid features (1x1 conv), cell cosines and the three attentions on a backbone's map."""

    def __init__(self, config: XCosHeadConfig) -> None:
        super().__init__()
        self.config = config
        self.grid: nn.Module = (
            CellwiseConv1x1(config.in_channels, config.grid_channels, config.height,
                            config.width)
            if config.cell_specific else nn.Conv2d(config.in_channels, config.grid_channels, 1))
        self.attention = AttentionNet(config.grid_channels, config.reduced_channels,
                                      config.symmetric, config.attention_padding)
        self.attention_grid = (nn.Conv2d(config.in_channels, config.grid_channels, 1)
                               if config.attention_shared else None)
        self.register_buffer("pearson", uniform_attention(config.height, config.width))

    @property
    def feature_dim(self) -> int:
        """Length of the flattened grid features the identity loss sees (1568 for 7x7x32)."""
        c = self.config
        return c.grid_channels * c.height * c.width

    def features(self, maps: torch.Tensor) -> torch.Tensor:
        """F = C_1x1(backbone map): (N, C_in, h, w) -> (N, 32, h, w); with a separate attention
        projection, its 32 channels follow F's (``similarity_part``, ``attention_part``)."""
        c = self.config
        if maps.ndim != 4 or tuple(maps.shape[1:]) != (c.in_channels, c.height, c.width):
            raise InvalidArgument(f"head expects maps (N, {c.in_channels}, {c.height}, "
                                  f"{c.width}), got {tuple(maps.shape)}")
        f = self.grid(maps)
        if self.attention_grid is not None:
            return torch.cat([f, self.attention_grid(maps)], dim=1)
        return f

    def similarity_part(self, feats: torch.Tensor) -> torch.Tensor:
        """The channels S and the identity loss read (F)."""
        return feats[:, : self.config.grid_channels]

    def attention_part(self, feats: torch.Tensor) -> torch.Tensor:
        """The channels the learned attention reads (F, or its own shared projection)."""
        return feats[:, self.config.grid_channels:] if self.attention_grid is not None else feats

    def weights(self, fa: torch.Tensor, fb: torch.Tensor, kind: str = "L") -> torch.Tensor:
        """W for each pair, (N, h, w), of the given kind (U, P or L)."""
        n = fa.shape[0]
        if kind == "L":
            return self.attention(self.attention_part(fa), self.attention_part(fb))
        if kind == "U":
            u = uniform_attention(self.config.height, self.config.width, fa.dtype)
            return u.to(fa.device).expand(n, -1, -1)
        if kind == "P":
            return self.get_buffer("pearson").to(fa.dtype).expand(n, -1, -1)
        raise InvalidArgument(f"unknown attention '{kind}'; valid: {', '.join(ATTENTION_KINDS)}")

    def compare(self, fa: torch.Tensor, fb: torch.Tensor, kind: str = "L") -> XCosOutput:
        """S, W and xCos from two faces' grid features."""
        s = cell_cosine(self.similarity_part(fa), self.similarity_part(fb))
        w = self.weights(fa, fb, kind)
        return XCosOutput(s, w, xcos_score(s, w))

    def compare_indexed(self, feats: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor,
                        kind: str = "L") -> XCosOutput:
        """Like ``compare`` for pairs (feats[ia[k]], feats[ib[k]]) of one set of faces' grid
        features; per-face work is done once however many pairs a face is in."""
        fa, fb = feats[ia], feats[ib]
        s = cell_cosine(self.similarity_part(fa), self.similarity_part(fb))
        if kind == "L":
            first, second = self.attention.parts(self.attention_part(feats))
            w = cell_softmax(self.attention.combine((first[ia], second[ia]),
                                                    (first[ib], second[ib])))
        else:
            w = self.weights(fa, fb, kind)
        return XCosOutput(s, w, xcos_score(s, w))

    def forward(self, maps_a: torch.Tensor, maps_b: torch.Tensor, kind: str = "L") -> XCosOutput:
        return self.compare(self.features(maps_a), self.features(maps_b), kind)

    def set_pearson(self, p: torch.Tensor) -> None:
        """Store P (computed on training pairs by ``pearson_attention``)."""
        c = self.config
        if tuple(p.shape) != (c.height, c.width):
            raise InvalidArgument(f"P must be ({c.height}, {c.width}), got {tuple(p.shape)}")
        self.get_buffer("pearson").copy_(p)


# Default head: trained on all of LFW, else the first fold head, else the quick one (first use).
XCOS_HEADS = HeadStore("xcos", "xCos head", "facexplain train xcos",
                       ("all", *(f"fold{k}" for k in range(1, N_FOLDS + 1)), "quick"))


def checkpoint_path(backbone: str, fold: int | None = None, root: Path | None = None) -> Path:
    """Where ``train xcos`` stores a head: ``<home>/xcos/<backbone>/fold<k>|all.safetensors``."""
    return XCOS_HEADS.path(backbone, "all" if fold is None else f"fold{fold}", root)


def save_head(head: XCosHead, path: Path, extra: dict[str, object] | None = None) -> Path:
    """Weights, config and ``extra`` facts, digest and JSON twin (``HeadStore.save``)."""
    return XCOS_HEADS.save(head, head.config, path, extra)


def load_head(path: Path) -> tuple[XCosHead, dict[str, object]]:
    """Rebuild a head from a checkpoint; returns it (eval mode) and the stored metadata."""
    state, meta = XCOS_HEADS.load(path)
    head = XCosHead(XCosHeadConfig(**meta["config"]))
    head.load_state_dict(state)
    return head.eval(), meta


def default_checkpoint(backbone: str, root: Path | None = None) -> Path:
    """The head trained on all of LFW if present, else the first fold head found, else the quick
    head trained on first use (``train.xcos.ensure_default_head``)."""
    return XCOS_HEADS.default(backbone, root)
