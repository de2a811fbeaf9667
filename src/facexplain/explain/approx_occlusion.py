"""Approximate pairwise occlusion (``--approx``): Krypton's two ideas on the incremental path.

Why: at the paper's fine setting (k=8, s=1) one pair costs minutes on a CPU core even with the
exact incremental evaluation. Krypton (Nakandala et al., SIGMOD 2019) trades a little accuracy
for much of that time, in two opt-in ways, both used here:

1. **Projective-field threshold τ** (``cap``): a patch's influence grows layer by layer; each
   local stage recomputes at most τ of its output side around the middle of the changed region
   and keeps the clean values beyond it (``incremental._crop_axis``).
2. **Adaptive drill-down**: a coarse map first (stride ``coarse_stride``), then the fine stride
   only for the windows that touch the ``drill`` fraction of pixels where the coarse map is
   strongest (|Δ|); every other pixel keeps the coarse value.

The error is measured, never assumed: ``check_windows`` fine windows are drawn at random and
scored by full re-evaluation, and the largest gap to their approximate score is reported
relative to the map's largest |Δ|. ``bench/occlusion_approx.py`` measures the whole map
against the exact one (Spearman, top-10% overlap) over LFW pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facexplain.errors import InvalidArgument
from facexplain.explain.incremental import Window
from facexplain.explain.occlusion_loop import (
    OcclusionResult,
    check_pair,
    occlusion_windows,
    original_score,
    window_changes,
    window_mean,
)
from facexplain.explain.scorer import PairScorer


@dataclass(frozen=True)
class ApproxSettings:
    """Krypton's knobs. The projective-field cap is off by default: on sface at (16, 4) (the
    ``make demo`` pair, LFW fold 1) τ = 0.5 cut the Spearman correlation with the exact map to
    0.76-0.82, because every patch reaches nearly the whole 14x14 and 7x7 maps; drill-down
    alone kept 0.94 there (see docs/BENCHMARKS.md)."""

    cap: float | None = None
    drill: float = 0.25
    coarse_stride: int | None = None  # None: max(stride, patch // 2)
    check_windows: int = 8
    seed: int = 0

    def validate(self) -> None:
        if self.cap is not None and not 0.0 < self.cap <= 1.0:
            raise InvalidArgument(f"projective-field threshold τ must be in (0, 1], got {self.cap}")
        if not 0.0 < self.drill <= 1.0:
            raise InvalidArgument(f"drill-down fraction must be in (0, 1], got {self.drill}")

    def coarse_for(self, patch: int, stride: int) -> int:
        return max(stride, self.coarse_stride or patch // 2)

    def describe(self, patch: int, stride: int) -> str:
        cap = "off" if self.cap is None else f"τ={self.cap}"
        return (f"projective-field threshold {cap}; coarse stride "
                f"{self.coarse_for(patch, stride)}, drill-down on the top {self.drill:.0%} "
                f"of pixels; {self.check_windows} patches drawn at random re-scored exactly")


@dataclass(frozen=True)
class ApproxResult:
    """The approximate Δ map and what it cost, with its measured error on sampled windows."""

    result: OcclusionResult
    check_error: float  # max |approx − exact| over the sampled windows / max |Δ|
    n_checked: int
    fine_windows: int
    coarse_windows: int


def _touching(windows: list[Window], hot: torch.Tensor) -> list[Window]:
    """The windows that cover at least one hot pixel (integral image: O(1) per window)."""
    integral = torch.zeros(hot.shape[0] + 1, hot.shape[1] + 1, dtype=torch.int64)
    integral[1:, 1:] = hot.to(torch.int64).cumsum(0).cumsum(1)
    return [(y0, y1, x0, x1) for y0, y1, x0, x1 in windows
            if int(integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]) > 0]


def approximate_occlusion_delta(
    scorer: PairScorer, pair: torch.Tensor, fill: torch.Tensor, patch: int, stride: int,
    settings: ApproxSettings, batch_size: int = 32, edge: str = "shift", progress: bool = False,
) -> ApproxResult:
    """Δ at (patch, stride) by drill-down over a coarse map, both on the capped incremental path."""
    settings.validate()
    check_pair(pair, fill, batch_size)
    x = pair.detach().float()
    h, w = int(x.shape[2]), int(x.shape[3])
    original = original_score(scorer, x)
    window_score = scorer.incremental(x, settings.cap)
    coarse_stride = settings.coarse_for(patch, stride)
    coarse = occlusion_windows(h, w, patch, coarse_stride, edge)
    coarse_changes = window_changes(scorer, x, fill, coarse, original, batch_size, progress,
                                    window_score)
    total, counts = window_mean(coarse, coarse_changes, h, w)
    delta = total / counts
    fine_all = occlusion_windows(h, w, patch, stride, edge)
    fine: list[Window] = []
    fine_changes = torch.zeros(0, dtype=torch.float64)
    if coarse_stride > stride:
        magnitude = delta.abs().flatten()
        n_hot = max(1, round(settings.drill * magnitude.numel()))
        cut = torch.topk(magnitude, n_hot).values[-1]
        hot = delta.abs() >= cut
        fine = _touching(fine_all, hot)
        fine_changes = window_changes(scorer, x, fill, fine, original, batch_size, progress,
                                      window_score)
        f_total, f_counts = window_mean(fine, fine_changes, h, w)
        delta = torch.where(hot, f_total / f_counts.clamp(min=1), delta)
    check_error, n_checked = _sampled_error(scorer, x, fill, original, settings,
                                            fine or coarse,
                                            fine_changes if fine else coarse_changes,
                                            float(delta.abs().max()))
    n_windows = len(coarse) + len(fine)
    return ApproxResult(OcclusionResult(delta.float(), original, n_windows + 1, n_windows),
                        check_error, n_checked, len(fine), len(coarse))


def _sampled_error(scorer: PairScorer, x: torch.Tensor, fill: torch.Tensor, original: float,
                   settings: ApproxSettings, windows: list[Window], approx: torch.Tensor,
                   scale: float) -> tuple[float, int]:
    """Largest |approximate − exact| window change over a random sample, relative to ``scale``."""
    n = min(settings.check_windows, len(windows))
    if n == 0 or scale <= 0:
        return 0.0, 0
    pick = np.random.default_rng(settings.seed).choice(len(windows), n, replace=False)
    exact = window_changes(scorer, x, fill, [windows[i] for i in pick], original)
    return float((exact - approx[torch.from_numpy(pick)]).abs().max()) / scale, n
