"""The one interface every backbone module implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from facexplain.errors import UnknownNode

EMBEDDING = "embedding"
Stage = Callable[[torch.Tensor], torch.Tensor]


def unknown_nodes(missing: Sequence[str], valid: Sequence[str], hint: str = "") -> UnknownNode:
    """The one-line error for node names a model lacks, naming a few it has."""
    shown = ", ".join(valid[:4]) + (f", ... ({len(valid)} in all)" if len(valid) > 4 else "")
    names = ", ".join(f"'{n}'" for n in missing)
    return UnknownNode(f"unknown node {names}{hint}; valid: {shown} (see node_names())")


class FaceModel(nn.Module):
    """A differentiable face embedder with named intermediate maps.

    Input: float RGB pixels in [0, 255], shape (N, 3, H, W), already aligned to the
    backbone's template; each model applies its own normalisation. ``forward`` returns the
    (unnormalised) embedding; ``forward_nodes`` also returns the requested intermediate
    tensors by name (``node_names`` lists them), plus ``"embedding"``. Weights are frozen
    ``nn.Parameter``s: ``requires_grad_(True)`` to fine-tune them.
    """

    def node_names(self) -> tuple[str, ...]:
        """Every name ``forward_nodes`` accepts, ``"embedding"`` first."""
        raise NotImplementedError

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_nodes(x, (EMBEDDING,))[EMBEDDING]

    def forget_compiled(self) -> None:
        """Drop anything computed from the weights and kept for speed (fused copies, plans).

        Called by ``PairScorer`` when the weights' *values* changed in a way torch's version
        counters do not see (``p.data.mul_``, ``p.data = ...``, ``vector_to_parameters``).
        """

    def stages(self) -> list[Stage]:
        """``forward`` as a chain of callables, split where one tensor carries everything on.

        Explainers that re-run the network on many slightly changed inputs (occlusion) use the
        split to recompute only what a change reaches; the composition must equal ``forward``.
        The default is no split.
        """
        return [self.forward]
