"""The pairwise-occlusion loop: patch windows, batched re-scoring of the pair, per-pixel mean.

Why its own module: the exact explainer (``explain.occlusion``) and the approximate drill-down
(``explain.approx_occlusion``) both run these steps; each imports them from here instead of
from the other. See ``explain.occlusion`` for what Δ means and how it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from facexplain.errors import InvalidArgument
from facexplain.explain.base import PairScore
from facexplain.explain.incremental import Window
from facexplain.explain.scorer import PairScorer, clean_score
from facexplain.progress import progress_bar

EDGES = ("shift", "clip")
# The (2, 3, H, W) fill and N windows -> (N,) scores of the pair with each window filled in
# both faces (the scorer knows the clean pair and builds only what the windows change).
WindowScore = Callable[[torch.Tensor, Sequence[Window]], torch.Tensor]


def axis_windows(size: int, patch: int, stride: int, edge: str = "shift") -> list[tuple[int, int]]:
    """Start/end of each patch along one axis, covering every pixel.

    ``shift`` (default) keeps every patch k wide: starts 0, s, 2s, ... and, when the grid stops
    short of the border, one more patch flush with it (start size − k). ``clip`` is Captum's
    rule: starts 0, s, ... up to ceil((size − k) / s) · s, the last patch cut at the border.
    The two agree whenever (size − k) is a multiple of s.
    """
    if patch < 1 or stride < 1:
        raise InvalidArgument(f"patch and stride must be >= 1, got k={patch}, s={stride}")
    if patch > size:
        raise InvalidArgument(f"patch {patch} is larger than the {size}-pixel image")
    if stride > patch:
        raise InvalidArgument(f"stride {stride} > patch {patch} would leave pixels never occluded")
    if edge == "shift":
        starts = list(range(0, size - patch + 1, stride))
        if starts[-1] != size - patch:
            starts.append(size - patch)
        return [(s, s + patch) for s in starts]
    if edge == "clip":
        n = -(-(size - patch) // stride) + 1
        return [(i * stride, min(i * stride + patch, size)) for i in range(n)]
    raise InvalidArgument(f"unknown edge rule '{edge}'; valid: {', '.join(EDGES)}")


def occlusion_windows(height: int, width: int, patch: int, stride: int,
                      edge: str = "shift") -> list[Window]:
    """Every patch position, row-major (the order the batches are scored in)."""
    ys = axis_windows(height, patch, stride, edge)
    xs = axis_windows(width, patch, stride, edge)
    return [(y0, y1, x0, x1) for y0, y1 in ys for x0, x1 in xs]


@dataclass(frozen=True)
class OcclusionResult:
    """Raw output of one pair: the signed Δ map (H, W), the original score, pairs scored."""

    delta: torch.Tensor
    score: float
    n_forward: int
    n_windows: int


def _scores(score_fn: PairScore, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    s = score_fn(a, b)
    if s.numel() != a.shape[0]:
        raise InvalidArgument(f"the pair score must return one value per pair: got shape "
                              f"{tuple(s.shape)} for {a.shape[0]} pairs")
    return s.reshape(-1).detach().float()


def check_pair(pair: torch.Tensor, fill: torch.Tensor, batch_size: int) -> None:
    """One clear error for a pair, fill or batch size the loop cannot use."""
    if pair.ndim != 4 or pair.shape[:2] != (2, 3):
        raise InvalidArgument(f"pair must be a (2, 3, H, W) tensor, got {tuple(pair.shape)}")
    if fill.shape != pair.shape:
        raise InvalidArgument(f"fill shape {tuple(fill.shape)} != pair shape {tuple(pair.shape)}")
    if batch_size < 1:
        raise InvalidArgument(f"batch size must be >= 1, got {batch_size}")


def original_score(score_fn: PairScore, x: torch.Tensor) -> float:
    """The clean pair's score (fresh copies: an in-place score must not edit the pair)."""
    with torch.inference_mode():
        return (clean_score(score_fn, x) if isinstance(score_fn, PairScorer)
                else float(_scores(score_fn, x[0:1].clone(), x[1:2].clone())[0]))


def window_changes(
    score_fn: PairScore, pair: torch.Tensor, fill: torch.Tensor, windows: Sequence[Window],
    original: float, batch_size: int = 32, progress: bool = False,
    window_score: WindowScore | None = None,
) -> torch.Tensor:
    """sim(pair with the window filled in both faces) − ``original``, per window (float64)."""
    x = pair.detach().float()
    f = fill.detach().to(device=x.device, dtype=x.dtype)
    h, w = int(x.shape[2]), int(x.shape[3])
    out = torch.zeros(len(windows), dtype=torch.float64)
    bar = progress_bar(len(windows), "occlusion", unit="patch", enabled=progress, leave=False)
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            chunk = windows[start : start + batch_size]
            if window_score is not None:  # reads the fill inside the windows only
                scores = window_score(f, chunk).reshape(-1).detach().float()
            else:
                mask = torch.zeros(len(chunk), 1, h, w, dtype=torch.bool, device=x.device)
                for i, (y0, y1, x0, x1) in enumerate(chunk):
                    mask[i, :, y0:y1, x0:x1] = True
                # One fused pass per face builds the whole occluded batch (a fresh tensor, so
                # an in-place score cannot reach the pair or later batches).
                scores = _scores(score_fn, torch.where(mask, f[0], x[0]),
                                 torch.where(mask, f[1], x[1]))
            out[start : start + len(chunk)] = (scores - original).cpu().double()
            bar.update(len(chunk))
    bar.close()
    return out


def window_mean(windows: Sequence[Window], changes: torch.Tensor, h: int, w: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel (sum of the changes of the windows covering it, how many cover it)."""
    total = torch.zeros(h, w, dtype=torch.float64)
    counts = torch.zeros(h, w, dtype=torch.float64)
    for (y0, y1, x0, x1), c in zip(windows, changes.tolist(), strict=True):
        total[y0:y1, x0:x1] += c
        counts[y0:y1, x0:x1] += 1
    return total, counts


def pairwise_occlusion_delta(
    score_fn: PairScore,
    pair: torch.Tensor,
    fill: torch.Tensor,
    patch: int,
    stride: int,
    batch_size: int = 32,
    edge: str = "shift",
    progress: bool = False,
    window_score: WindowScore | None = None,
) -> OcclusionResult:
    """Algorithm 1 for one pair: the per-pixel mean of sim(occluded) − sim(original).

    ``pair`` and ``fill`` are (2, 3, H, W); each batch holds ``batch_size`` occluded pairs.
    The original pair is scored once; ``n_forward`` counts pair evaluations including it.
    ``window_score``, when given, scores the windows instead of ``score_fn`` from the fill
    and the windows alone (the incremental backbone evaluation, which never builds the
    occluded faces whole).
    """
    check_pair(pair, fill, batch_size)
    h, w = int(pair.shape[2]), int(pair.shape[3])
    windows = occlusion_windows(h, w, patch, stride, edge)
    x = pair.detach().float()
    original = original_score(score_fn, x)
    changes = window_changes(score_fn, x, fill, windows, original, batch_size, progress,
                             window_score)
    total, counts = window_mean(windows, changes, h, w)
    return OcclusionResult((total / counts).float(), original, len(windows) + 1, len(windows))


def normalize_delta(delta: torch.Tensor, theta: float) -> torch.Tensor:
    """Eq. 1: clip(Δ / Θ, 0, 1) — 1 where Δ reaches Θ, 0 where occlusion did not help."""
    if not theta > 0:
        raise InvalidArgument(f"Θ must be positive, got {theta}")
    return (delta / theta).clamp(0.0, 1.0)
