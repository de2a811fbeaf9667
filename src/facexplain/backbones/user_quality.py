"""Whether a user's model tells people apart, measured at registration on real LFW faces.

Why: a model that gives every face the same vector (or one that ignores its input, or a random
projection of the pixels) still outputs vectors; it used to register, get a "provisional
threshold 1.0000 (accuracy 0.5000)" and then call two strangers the SAME person with
"confidence 50%". Three numbers, each with a floor measured on the built-in backbones and on
such models (``bench/model_checks.py``, docs/BENCHMARKS.md "Model checks"):

- **variation**: how much the embedding changes from face to face, relative to its size
  (0: the output does not depend on the input);
- **spread**: 1 - the median cosine between different people (about 0: every face points the
  same way, a (near-)constant model however small its changes are);
- **AUC** of same-person against different-person cosines (0.5: chance), with d' beside it.

The faces: the normalisation search's (both photos of LFW's first six same-person pairs: 10
photos of 4 people) and both photos of the first three same-person pairs of every fold, 55
photos of 22 people; every two faces of different people are an impostor pair. The fold slice
is what makes the check hold: on the search's 10 faces alone a random projection of the pixels
reaches AUC 0.80, on the 55 faces 0.61 (the built-ins: 0.986 and above).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

PAIRS_PER_FOLD = 3  # same-person pairs of each LFW fold added to the twelve faces
MIN_VARIATION = 1e-4  # below: the output does not depend on the input (float noise is ~1e-7)
MIN_SPREAD = 0.01  # below: different people's cosine is above 0.99, a (near-)constant model
MIN_AUC = 0.8  # below: the cosines do not separate same from different people


@dataclass(frozen=True)
class ModelQuality:
    """The model check's numbers on ``faces`` aligned LFW faces of ``people`` people."""

    faces: int
    people: int
    genuine: int
    impostor: int
    variation: float
    spread: float
    auc: float
    d_prime: float

    def failed_check(self) -> str | None:
        """The first check under its floor: 'variation', 'spread', 'auc' (None: passes)."""
        for name, value, floor in (("variation", self.variation, MIN_VARIATION),
                                   ("spread", self.spread, MIN_SPREAD),
                                   ("auc", self.auc, MIN_AUC)):
            if not value >= floor:  # NaN fails too
                return name
        return None

    def failure(self) -> str | None:
        """Which check failed, with its number and floor (None: the model passes)."""
        check = self.failed_check()
        if check == "variation":
            return (f"its output does not depend on the input (it changes by {self.variation:.2g} "
                    f"of its size across {self.faces} faces; floor {MIN_VARIATION:g})")
        if check == "spread":
            return (f"its output is (nearly) the same for every face (different people's median "
                    f"cosine {1 - self.spread:.6f}, above {1 - MIN_SPREAD:g})")
        if check == "auc":
            return (f"it does not tell people apart (AUC {self.auc:.3f} of same- against "
                    f"different-person cosines on {self.faces} LFW faces, floor {MIN_AUC:g}; "
                    f"d' {self.d_prime:.2f})")
        return None

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def quality_images(lfw_pairs: Path, lfw_images: Path, first: Sequence[Path]
                   ) -> tuple[list[Path], list[str]]:
    """``first`` (the normalisation faces) and both photos of the first ``PAIRS_PER_FOLD``
    same-person pairs of every fold, with each photo's person."""
    from facexplain.datasets.lfw import read_pairs

    chosen = list(first)
    taken: dict[int, int] = {}
    for pair in read_pairs(lfw_pairs):
        if pair.same and taken.get(pair.fold, 0) < PAIRS_PER_FOLD:
            taken[pair.fold] = taken.get(pair.fold, 0) + 1
            chosen += [pair.path_a(lfw_images), pair.path_b(lfw_images)]
    paths = list(dict.fromkeys(chosen))
    return paths, [p.parent.name for p in paths]


def _auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
    return float(roc_auc_score(labels, np.r_[genuine, impostor]))


def measure(embeddings: torch.Tensor, people: Sequence[str]) -> ModelQuality:
    """The check's numbers for one embedding per face (``people``: each face's person)."""
    e = embeddings.reshape(len(people), -1).double()
    size = float(e.abs().max())
    variation = float((e - e[:1]).abs().max()) / size if size > 0 else 0.0
    unit = torch.nn.functional.normalize(e, dim=1)
    sims = (unit @ unit.T).numpy()
    same = np.array([[a == b for b in people] for a in people])
    upper = np.triu(np.ones_like(same), 1).astype(bool)
    gen, imp = sims[same & upper], sims[~same & upper]
    finite = bool(np.isfinite(sims).all()) and gen.size > 1 and imp.size > 1
    nan = float("nan")
    spread = max(0.0, float(1 - np.median(imp))) if finite else nan  # not -0.0 from rounding
    auc = _auc(gen, imp) if finite else nan
    sd = float(np.sqrt((gen.var() + imp.var()) / 2)) if finite else nan
    d_prime = float((gen.mean() - imp.mean()) / max(sd, 1e-9)) if finite else nan
    return ModelQuality(len(people), len(set(people)), int(gen.size), int(imp.size),
                        variation if np.isfinite(variation) else nan, spread, auc, d_prime)
