"""RISE for a pair (Petsiuk et al., BMVC 2018) and CorrRISE (Lu, Xu & Ebrahimi, WACV 2024):
random masks on one face while the other stays clean, read back per pixel.

Both explain the pair's cosine similarity s(M) = sim(M ⊙ A + (1 − M) ⊙ fill, B), face A then
face B with the same masks, and share the project's sign convention: ``delta`` > 0 where
hiding the pixel tends to make the pair look *more* alike (the faces differ there),
``difference`` = relu(delta), ``similarity`` = relu(−delta).

* RISE: the saliency of a pixel is the mean score of the masks that keep it,
  Σ_i s_i M_i(λ) / (N · p) (``saliency``); ``delta`` is its centred form,
  −Σ_i (s_i − s̄) M_i(λ) / (N · p). Masks: a 7 x 7 grid kept with p = 0.5, upsampled
  bilinearly with a random shift (the paper's ResNet setting). Sampling stops once the map
  correlates at 0.99 with the map of half the samples (at most ``max_samples``).
* CorrRISE: the Pearson correlation over the samples between the mask value at a pixel and
  the score; ``delta`` = −correlation. Defaults follow the authors' released code: 500 masks,
  each hiding 3 squares of 30 px on a 112 px crop (scaled to the crop), hidden pixels black.
  ``masks="grid"`` draws RISE's masks instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps, PairScore
from facexplain.explain.gradients import check_pair, reference_for, signed_maps
from facexplain.explain.sampling import (
    DEFAULT_STOP,
    MaskMoments,
    OneFaceScore,
    Sampled,
    SamplingDetails,
    StopRule,
    blend,
    grid_masks,
    mask_blocks,
    patch_masks,
    sample,
    sampling_details,
)
from facexplain.explain.scorer import clean_score

Draw = Callable[[int, torch.Generator], torch.Tensor]
REFERENCE_SIZE = 112  # CorrRISE's patch size is given for 112 px crops


class MaskSampling(Explainer):
    """Shared loop: for each face, draw mask blocks, score the masked face against the other
    clean face, accumulate ``MaskMoments``; subclasses say how masks are drawn and read."""

    name = "mask-sampling"
    stop: StopRule | None = None

    def __init__(self, score_fn: PairScore, max_samples: int, fill: str | torch.Tensor = "zero",
                 template: str | None = None, seed: int = 0) -> None:
        super().__init__(score_fn)
        if max_samples < 2:
            raise InvalidArgument(f"need at least 2 samples per face, got {max_samples}")
        self.max_samples = max_samples
        self.fill = fill
        self.template = template
        self.seed = seed

    def draw(self, height: int, width: int) -> Draw:
        raise NotImplementedError

    def read(self, moments: MaskMoments, n: int | None = None) -> dict[str, np.ndarray]:
        """The face's maps from the first ``n`` samples; ``"delta"`` must be one of them."""
        raise NotImplementedError

    def _one_face(self, x: torch.Tensor, fill: torch.Tensor, side: int
                  ) -> tuple[dict[str, np.ndarray], Sampled, int]:
        h, w = int(x.shape[2]), int(x.shape[3])
        scorer = OneFaceScore(self.score_fn, x, side)
        moments = MaskMoments(h, w)
        blocks = mask_blocks(self.draw(h, w), self.seed)

        def step(count: int) -> None:
            masks = next(blocks)[:count]
            moments.add(masks, scorer(blend(x[side], fill[side], masks)))

        done = sample(step, lambda n: self.read(moments, n)["delta"], self.max_samples,
                      self.stop)
        return self.read(moments), done, scorer.calls

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = check_pair(pair)
        fill = reference_for(x, self.fill, self.template)
        score = clean_score(self.score_fn, x)
        faces = [self._one_face(x, fill, side) for side in (0, 1)]
        maps = {name: torch.from_numpy(np.stack([f[0][name] for f in faces])).float()
                for name in faces[0][0]}
        out = signed_maps(maps.pop("delta"))
        out.update(maps)
        runs = [f[1] for f in faces]
        meta = SamplingDetails(
            **sampling_details(runs, self.max_samples, self.stop),  # type: ignore[arg-type]
            n_forward=faces[0][2] + faces[1][2] + 1, seed=self.seed,
            fill=self.fill if isinstance(self.fill, str) else "custom",
            seconds=round(time.perf_counter() - started, 3))
        return ExplanationMaps(self.name, out, score, meta)


class Rise(MaskSampling):
    """RISE of the pair score, one face at a time, stopping when the map has converged."""

    name = "rise"

    def __init__(self, score_fn: PairScore, max_samples: int = 1000, cells: int = 7,
                 keep: float = 0.5, fill: str | torch.Tensor = "zero",
                 template: str | None = None, seed: int = 0,
                 stop: StopRule | None = DEFAULT_STOP) -> None:
        super().__init__(score_fn, max_samples, fill, template, seed)
        if cells < 1 or not 0.0 < keep < 1.0:
            raise InvalidArgument(f"RISE needs cells >= 1 and 0 < keep < 1, got {cells}, {keep}")
        self.cells = cells
        self.keep = keep
        self.stop = stop

    def draw(self, height: int, width: int) -> Draw:
        return lambda n, g: grid_masks(n, height, width, self.cells, self.keep, g)

    def read(self, moments: MaskMoments, n: int | None = None) -> dict[str, np.ndarray]:
        saliency, centred = moments.rise(self.keep, n)
        return {"delta": -centred, "saliency": saliency}


class CorrRise(MaskSampling):
    """CorrRISE: per pixel, the correlation of the mask with the pair score."""

    name = "corrrise"

    def __init__(self, score_fn: PairScore, max_samples: int = 500, masks: str = "patches",
                 patches: int = 3, patch_size: int | None = None, cells: int = 7,
                 keep: float = 0.5, fill: str | torch.Tensor = "zero",
                 template: str | None = None, seed: int = 0) -> None:
        super().__init__(score_fn, max_samples, fill, template, seed)
        if max_samples < 3:
            raise InvalidArgument(f"a correlation needs at least 3 samples, got {max_samples}")
        if masks not in ("patches", "grid"):
            raise InvalidArgument(f"unknown CorrRISE masks '{masks}'; valid: patches, grid")
        self.masks = masks
        self.patches = patches
        self.patch_size = patch_size
        self.cells = cells
        self.keep = keep

    def draw(self, height: int, width: int) -> Draw:
        if self.masks == "grid":
            return lambda n, g: grid_masks(n, height, width, self.cells, self.keep, g)
        size = self.patch_size or max(1, round(30 * min(height, width) / REFERENCE_SIZE))
        return lambda n, g: patch_masks(n, height, width, self.patches, size, g)

    def read(self, moments: MaskMoments, n: int | None = None) -> dict[str, np.ndarray]:
        return {"delta": -moments.pearson(n)}
