"""xCos as an explainer: the pair score *is* the sum of the explanation, <S, W>.

Why: unlike post-hoc maps, xCos explains its own number exactly: S says which face parts match,
W how much each part counts, and their inner product is the score. ``XCos(...).explain(pair)``
returns both grids (in ``meta``, shape (h, w)), the same grids upsampled to the aligned crop (in
``maps``, shape (2, H, W) as every explainer), and ``score`` = <S, W> summed in float64 over the
returned float32 grids, so a caller re-adding them gets the reported score exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.errors import InvalidArgument
from facexplain.explain.base import ExplanationMaps, LayerExplainer, MethodDetails
from facexplain.heads.xcos import (
    ATTENTION_KINDS,
    XCosHead,
    XCosOutput,
    default_checkpoint,
    load_head,
)
from facexplain.scoring import cosine


@dataclass(frozen=True, kw_only=True)
class XCosDetails(MethodDetails):
    """The grids themselves (S, W of shape (h, w)) and what the head was trained against."""

    S: torch.Tensor
    W: torch.Tensor
    attention_kind: str
    node: str
    backbone: str | None
    teacher: str | None
    cosine: float
    head: str | None = None
    # A per-cell grid (the default head) lets W weigh cells whose S is the same for every pair.
    cell_specific: bool = False


class XCos(LayerExplainer):
    """Explain a pair by its patch similarities S and attention W (kind U, P or L)."""

    name = "xcos"

    def __init__(self, model: FaceModel, head: XCosHead, attention: str = "L",
                 node: str | None = None, source: str | None = None) -> None:
        if attention not in ATTENTION_KINDS:
            raise InvalidArgument(f"unknown attention '{attention}'; valid: "
                                  f"{', '.join(ATTENTION_KINDS)}")
        node = node or head.config.node
        if not node:
            raise InvalidArgument("the xCos head does not name its backbone map; pass node=")
        super().__init__(model, node)
        self.score_fn = self._score  # xCos explains its own score, <S, W>
        self.head = head.eval()
        self.attention = attention
        self.source = source  # which checkpoint, said in the report

    def _score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        maps_a = self.model.forward_nodes(a, (self.node,))[self.node]
        maps_b = self.model.forward_nodes(b, (self.node,))[self.node]
        return self.head(maps_a, maps_b, self.attention).score

    @torch.no_grad()
    def compare(self, pair: torch.Tensor) -> tuple[XCosOutput, float]:
        """S, W, xCos of one (2, 3, H, W) pair, and the backbone's own embedding cosine."""
        if pair.ndim != 4 or pair.shape[0] != 2:
            raise InvalidArgument(f"expected a (2, 3, H, W) pair, got {tuple(pair.shape)}")
        out = self.model.forward_nodes(pair, (self.node, EMBEDDING))
        maps = out[self.node]
        result = self.head(maps[0:1], maps[1:2], self.attention)
        emb = out[EMBEDDING]
        return result, float(cosine(emb[0:1], emb[1:2])[0])

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        result, plain = self.compare(pair)
        s, w = result.similarity[0], result.attention[0]
        score = float((s.double() * w.double()).sum())
        size = (int(pair.shape[2]), int(pair.shape[3]))

        def to_pixels(grid: torch.Tensor) -> torch.Tensor:
            up = F.interpolate(grid[None, None], size=size, mode="nearest")[0, 0]
            return torch.stack([up, up])

        return ExplanationMaps(
            method=self.name,
            maps={"similarity": to_pixels(s), "attention": to_pixels(w),
                  "contribution": to_pixels(s * w)},
            score=score,
            meta=XCosDetails(S=s, W=w, attention_kind=self.attention, node=self.node,
                             backbone=self.head.config.backbone,
                             teacher=self.head.config.teacher, cosine=plain,
                             head=self.source, cell_specific=self.head.config.cell_specific),
        )


def load_xcos(backbone: str, path: Path | None = None, model: FaceModel | None = None,
              attention: str = "L", root: Path | None = None) -> XCos:
    """An ``XCos`` explainer from a trained head (default: ``default_checkpoint``).

    Pass ``model`` to reuse an already loaded backbone; it must be the one the head was trained
    on (checked by name against the checkpoint).
    """
    from facexplain.backbones.registry import load_backbone

    path = path or default_checkpoint(backbone, root)
    head, meta = load_head(path)
    if head.config.backbone and head.config.backbone != backbone:
        raise InvalidArgument(f"the xCos head was trained on '{head.config.backbone}', "
                              f"not '{backbone}'")
    n = meta.get("n_train_images")
    source = f"{path.name}" + (f", trained on {n:,} LFW photos" if isinstance(n, int) else "")
    return XCos(model or load_backbone(backbone), head, attention, source=source)
