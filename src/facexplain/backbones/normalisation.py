"""Which input normalisation a user's face model expects, found on real faces.

Why: a model fed the wrong scale or channel order still outputs vectors, and every explanation
and verdict after that is wrong in silence (the SFace runtime file normalised a second time
made every pair look alike: LFW accuracy 0.567). Each common convention is tried on a dozen
aligned LFW faces, two per person, and scored by how well it separates people: the
sensitivity index d' between same-person and different-person cosines. A model with a
convention built in (the built-ins' runtime files) wins with the identity. The scale is clear
(the right one separates people several times better); the channel order is not, on a dozen
faces, so RGB is kept unless BGR is clearly better (``pick``). A convention under which every
face looks alike ranks last whatever its d' (``collapsed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facexplain.backbones.user import Normalised

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Convention:
    """x -> (x - mean) / std on RGB [0, 255] pixels, channels reversed first if ``bgr``."""

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool = False

    def apply(self, faces: torch.Tensor) -> torch.Tensor:
        x = faces.flip(1) if self.bgr else faces
        mean = torch.tensor(self.mean).reshape(1, 3, 1, 1)
        std = torch.tensor(self.std).reshape(1, 3, 1, 1)
        return (x - mean) / std


def _both(name: str, mean: float | tuple[float, float, float],
          std: float | tuple[float, float, float]) -> list[Convention]:
    m = mean if isinstance(mean, tuple) else (mean,) * 3
    s = std if isinstance(std, tuple) else (std,) * 3
    return [Convention(f"{name}, RGB", m, s), Convention(f"{name}, BGR", m, s, True)]


CONVENTIONS: tuple[Convention, ...] = (
    *_both("[0, 255] (no normalisation)", 0.0, 1.0),
    *_both("[0, 1]", 0.0, 255.0),
    *_both("[-1, 1]", 127.5, 127.5),
    *_both("(x - 127.5) / 128", 127.5, 128.0),
    *_both("ImageNet mean/std", IMAGENET_MEAN, IMAGENET_STD),
)


BGR_MARGIN = 1.5  # BGR is chosen only if it separates people this many times better than RGB


def pick(ranked: list[tuple[Convention, float]]) -> tuple[Convention, float]:
    """The scale that separates people best, in RGB order unless BGR is clearly better: on a
    dozen faces the two orders come within noise of each other (BGR even led for three of the
    four built-ins, which all take RGB), while a wrong scale falls far behind."""
    best, best_d = ranked[0]
    rgb = next((c, d) for c, d in ranked if c.mean == best.mean and c.std == best.std
               and not c.bgr)
    bgr = next((c, d) for c, d in ranked if c.mean == best.mean and c.std == best.std and c.bgr)
    return bgr if bgr[1] > BGR_MARGIN * max(rgb[1], 1e-9) else rgb


def _cosines(embeddings: torch.Tensor, people: Sequence[str]
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """Same-person and different-person cosines (None when they cannot be told)."""
    e = torch.nn.functional.normalize(embeddings.reshape(len(people), -1).double(), dim=1)
    sims = (e @ e.T).numpy()
    same = np.array([[a == b for b in people] for a in people])
    upper = np.triu(np.ones_like(same), 1).astype(bool)
    gen, imp = sims[same & upper], sims[~same & upper]
    if gen.size < 2 or imp.size < 2 or not np.isfinite(sims).all():
        return None
    return gen, imp


def separation(embeddings: torch.Tensor, people: Sequence[str]) -> float:
    """d' between same-person and different-person cosines (nan when it cannot be told)."""
    found = _cosines(embeddings, people)
    if found is None:
        return float("nan")
    gen, imp = found
    spread = np.sqrt((gen.var() + imp.var()) / 2)
    return float((gen.mean() - imp.mean()) / max(spread, 1e-9))


def collapsed(embeddings: torch.Tensor, people: Sequence[str]) -> bool:
    """Every face points the same way (different people's median cosine above 1 -
    ``MIN_SPREAD``): d' is blind to the scale of the cosines, so a convention that squeezes a
    random projection into a near-constant output can score a better d' than the right one."""
    from facexplain.backbones.user_quality import MIN_SPREAD

    found = _cosines(embeddings, people)
    return found is None or bool(np.median(found[1]) > 1 - MIN_SPREAD)


def rank_conventions(model: Normalised, faces: torch.Tensor, people: Sequence[str],
                     given: Convention | None = None) -> list[tuple[Convention, float]]:
    """Every convention (and ``given``) with its d' on ``faces``, best first (a convention
    under which every face looks alike, ``collapsed``, after all others); ``model`` must be
    built with the identity normalisation (its graph is fed directly)."""
    tried = list(CONVENTIONS) + ([given] if given is not None and given not in CONVENTIONS
                                 else [])
    out = []
    with torch.no_grad():
        for conv in tried:
            emb = model.graph.forward_nodes(conv.apply(faces), [model.embedding_node])
            found = emb[model.embedding_node]
            out.append((conv, separation(found, people), collapsed(found, people)))
    out.sort(key=lambda t: (t[2], -t[1] if np.isfinite(t[1]) else np.inf))
    return [(conv, d) for conv, d, _ in out]
