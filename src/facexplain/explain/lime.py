"""LIME for verification (Ribeiro et al., KDD 2016), one face at a time.

Face A is cut into superpixels (scikit-image's SLIC); random subsets of them are hidden with
the fill (the mean face by default) while face B stays clean, and a weighted ridge regression
of the pair's similarity on which superpixels were kept gives one coefficient per superpixel:
its share of the match. Then the same for face B. LIME's image defaults: each superpixel kept
with probability 1/2, the unperturbed face as the first sample, weights sqrt(exp(−d²/0.25²))
with d the cosine distance to the all-kept vector, ridge with alpha 1.

The coefficient map is the similarity map; ``delta`` = −coefficient follows the project's
convention (> 0 where hiding the superpixel makes the pair look more alike). Sampling stops
once the map correlates at 0.99 with the map of half the samples (at most ``max_samples``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps, PairScore
from facexplain.explain.gradients import check_pair, reference_for, signed_maps
from facexplain.explain.sampling import (
    BLOCK,
    DEFAULT_STOP,
    OneFaceScore,
    Sampled,
    SamplingDetails,
    StopRule,
    blend,
    sample,
    sampling_details,
)
from facexplain.explain.scorer import clean_score


@dataclass(frozen=True, kw_only=True)
class LimeDetails(SamplingDetails):
    """Sampling details plus the superpixels of each face and the regression's settings."""

    superpixels_a: int
    superpixels_b: int
    kernel_width: float
    alpha: float


def superpixels(face: torch.Tensor, n_segments: int = 50, compactness: float = 10.0
                ) -> np.ndarray:
    """(H, W) labels 0..S-1 of SLIC superpixels of a (3, H, W) face in [0, 255]."""
    from skimage.segmentation import slic

    rgb = (face.detach().float().clamp(0, 255) / 255.0).permute(1, 2, 0).cpu().numpy()
    labels = slic(rgb.astype(np.float64), n_segments=n_segments, compactness=compactness,
                  sigma=1.0, start_label=0, channel_axis=-1)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def kernel_weights(z: np.ndarray, width: float) -> np.ndarray:
    """LIME's sample weights: sqrt(exp(−d² / width²)), d = cosine distance to all-kept."""
    kept = z.sum(axis=1)
    d = 1.0 - np.sqrt(kept / z.shape[1])  # cos(z, 1) = |z| / sqrt(S) for 0/1 rows
    return np.sqrt(np.exp(-(d**2) / width**2))


def fit_coefficients(z: np.ndarray, y: np.ndarray, width: float, alpha: float) -> np.ndarray:
    """Weighted ridge regression of the scores on the kept superpixels (scikit-learn)."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha, fit_intercept=True)
    model.fit(z, y, sample_weight=kernel_weights(z, width))
    return np.asarray(model.coef_, dtype=np.float64)


class Lime(Explainer):
    """LIME of the pair score, one face at a time, stopping when the map has converged."""

    name = "lime"

    def __init__(self, score_fn: PairScore, max_samples: int = 1000, n_segments: int = 50,
                 compactness: float = 10.0, kernel_width: float = 0.25, alpha: float = 1.0,
                 fill: str | torch.Tensor = "mean-face", template: str | None = None,
                 seed: int = 0, stop: StopRule | None = DEFAULT_STOP) -> None:
        super().__init__(score_fn)
        if max_samples < 2:
            raise InvalidArgument(f"need at least 2 samples per face, got {max_samples}")
        if n_segments < 2 or kernel_width <= 0 or alpha < 0:
            raise InvalidArgument("LIME needs >= 2 segments, a positive kernel width and a "
                                  "non-negative alpha")
        self.max_samples = max_samples
        self.n_segments = n_segments
        self.compactness = compactness
        self.kernel_width = kernel_width
        self.alpha = alpha
        self.fill = fill
        self.template = template
        self.seed = seed
        self.stop = stop

    def _one_face(self, x: torch.Tensor, fill: torch.Tensor, side: int, score: float
                  ) -> tuple[np.ndarray, Sampled, int, int]:
        seg = superpixels(x[side], self.n_segments, self.compactness)
        n_seg = int(seg.max()) + 1
        scorer = OneFaceScore(self.score_fn, x, side)
        rng = np.random.default_rng(self.seed)
        rows, scores = [np.ones((1, n_seg))], [np.array([score])]

        def step(count: int) -> None:
            z = rng.integers(0, 2, size=(BLOCK, n_seg))[:count].astype(np.float64)
            masks = torch.from_numpy(z[:, seg]).float()
            rows.append(z)
            scores.append(scorer(blend(x[side], fill[side], masks)).numpy())

        def estimate(n: int) -> np.ndarray:
            z, y = np.concatenate(rows)[: n + 1], np.concatenate(scores)[: n + 1]
            return -fit_coefficients(z, y, self.kernel_width, self.alpha)[seg]

        done = sample(step, estimate, self.max_samples, self.stop)
        return estimate(done.samples), done, scorer.calls, n_seg

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = check_pair(pair)
        fill = reference_for(x, self.fill, self.template)
        score = clean_score(self.score_fn, x)
        faces = [self._one_face(x, fill, side, score) for side in (0, 1)]
        maps = signed_maps(torch.from_numpy(np.stack([f[0] for f in faces])).float())
        runs = [f[1] for f in faces]
        meta = LimeDetails(
            **sampling_details(runs, self.max_samples, self.stop),  # type: ignore[arg-type]
            n_forward=faces[0][2] + faces[1][2] + 1, seed=self.seed,
            fill=self.fill if isinstance(self.fill, str) else "custom",
            superpixels_a=faces[0][3], superpixels_b=faces[1][3],
            kernel_width=self.kernel_width, alpha=self.alpha,
            seconds=round(time.perf_counter() - started, 3))
        return ExplanationMaps(self.name, maps, score, meta)
