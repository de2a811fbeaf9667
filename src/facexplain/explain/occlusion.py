"""Pairwise occlusion (deep difference analysis, Algorithm 1 of Zhong & Deng).

Hide the *same* k x k patch in both aligned faces, re-score the pair, and give every pixel the
mean change of the similarity over the patches that covered it:

    Δ = sim(occluded pair) − sim(original pair)

Δ > 0 where hiding a region makes the faces look alike (they differ there: the *difference*
map); Δ < 0 where hiding it makes them look less alike (they match there: the *similarity*
map). Both come from the same forward passes. Eq. 1 turns Δ into a display map,
clip(Δ / Θ, 0, 1), with Θ calibrated so that genuine pairs stay dark and impostors light up;
Θ is stored per backbone and occlusion setting as a record (``theta_store``).

The method only calls the pair score, so it works as a black box on any ``PairScore``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from facexplain.backbones.base import FaceModel
from facexplain.backbones.registry import get_spec
from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails, PairScore
from facexplain.explain.fills import DEFAULT_FILL, FILLS, data_dir, make_fill
from facexplain.explain.incremental import Window
from facexplain.explain.scorer import PairScorer, clean_score
from facexplain.records import RecordStore, store_for
from facexplain.scoring import best_threshold

if TYPE_CHECKING:
    from facexplain.explain.approx_occlusion import ApproxSettings

EDGES = ("shift", "clip")
THETA_FILE = "theta.json"
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
    bar = tqdm(total=len(windows), desc="occlusion", unit="patch", disable=not progress,
               leave=False)
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


@dataclass(frozen=True, kw_only=True)
class OcclusionDetails(MethodDetails):
    """Settings and counts of one pairwise-occlusion map."""

    k: int
    s: int
    fill: str
    edge: str
    n_forward: int
    n_windows: int
    batch_size: int
    incremental: bool
    theta: float | None
    max_delta: float
    # ``--approx``: the settings in words, and the measured error on sampled windows
    approx: str | None = None
    approx_error: float | None = None


class PairwiseOcclusion(Explainer):
    """Pairwise occlusion of a pair score; see the module docstring for the sign convention.

    ``fill`` is one of ``FILLS`` or an explicit (2, 3, H, W) / (3, H, W) tensor; ``template``
    picks the mean face (inferred from the crop size when omitted). With ``theta`` the maps
    include ``difference_normalized`` (Eq. 1). When the score is a backbone's ``PairScorer``
    and ``incremental`` is on (default), each occluded pair is evaluated incrementally: only
    the part of the network a patch reaches is recomputed (``explain.incremental``); any other
    pair score is treated as a black box and re-run whole.
    """

    name = "occlusion"

    def __init__(
        self,
        score_fn: PairScore,
        patch: int = 16,
        stride: int = 8,
        fill: str | torch.Tensor = DEFAULT_FILL,
        template: str | None = None,
        batch_size: int = 32,
        edge: str = "shift",
        blur_sigma: float | None = None,
        theta: float | None = None,
        progress: bool = False,
        incremental: bool = True,
        approx: ApproxSettings | None = None,
    ) -> None:
        super().__init__(score_fn)
        if isinstance(fill, str) and fill not in FILLS:
            raise InvalidArgument(f"unknown fill '{fill}'; valid: {', '.join(FILLS)}")
        if edge not in EDGES:
            raise InvalidArgument(f"unknown edge rule '{edge}'; valid: {', '.join(EDGES)}")
        if theta is not None and not theta > 0:
            raise InvalidArgument(f"Θ must be positive, got {theta}")
        self.patch = patch
        self.stride = stride
        self.fill = fill
        self.template = template
        self.batch_size = batch_size
        self.edge = edge
        self.blur_sigma = blur_sigma
        self.theta = theta
        self.progress = progress
        self.incremental = incremental and isinstance(score_fn, PairScorer)
        if approx is not None and not self.incremental:
            raise InvalidArgument("--approx works on the incremental evaluation of a "
                                  "registered backbone's score only")
        self.approx = approx

    @classmethod
    def for_backbone(
        cls, scorer: PairScorer | FaceModel, backbone: str, patch: int = 16, stride: int = 8,
        fill: str | torch.Tensor = DEFAULT_FILL, batch_size: int = 32, progress: bool = False,
        incremental: bool = True, approx: ApproxSettings | None = None,
    ) -> PairwiseOcclusion:
        """Occlusion of a registered backbone's cosine: its template's mean face, its stored Θ.

        ``incremental`` (default) recomputes only what each patch reaches; the maps are the
        same as with full re-evaluation up to float rounding.
        """
        spec = get_spec(backbone)
        record = get_theta(backbone, patch, stride, fill) if isinstance(fill, str) else None
        score = scorer if isinstance(scorer, PairScorer) else PairScorer(scorer)
        return cls(score, patch, stride, fill, template=spec.template, batch_size=batch_size,
                   theta=record.theta if record else None, progress=progress,
                   incremental=incremental, approx=approx)

    def fill_for(self, pair: torch.Tensor) -> torch.Tensor:
        if isinstance(self.fill, str):
            return make_fill(pair, self.fill, self.template, self.blur_sigma)
        f = self.fill.detach().float()
        return f.unsqueeze(0).expand(2, -1, -1, -1) if f.ndim == 3 else f

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        window_score = None
        score_fn = self.score_fn
        approx_error = None
        if self.approx is not None:
            from facexplain.explain.approx_occlusion import approximate_occlusion_delta

            assert isinstance(score_fn, PairScorer)
            approximate = approximate_occlusion_delta(
                score_fn, pair, self.fill_for(pair), self.patch, self.stride, self.approx,
                self.batch_size, self.edge, self.progress)
            res, approx_error = approximate.result, approximate.check_error
        else:
            if self.incremental:
                assert isinstance(score_fn, PairScorer)
                window_score = score_fn.incremental(pair)
            res = pairwise_occlusion_delta(score_fn, pair, self.fill_for(pair), self.patch,
                                           self.stride, self.batch_size, self.edge,
                                           self.progress, window_score)
        d = res.delta
        maps = {
            "delta": torch.stack([d, d]),
            "difference": torch.stack([d, d]).clamp(min=0),
            "similarity": torch.stack([-d, -d]).clamp(min=0),
        }
        if self.theta is not None:
            maps["difference_normalized"] = normalize_delta(maps["delta"], self.theta)
        meta = OcclusionDetails(
            k=self.patch, s=self.stride,
            fill=self.fill if isinstance(self.fill, str) else "custom",
            edge=self.edge, n_forward=res.n_forward, n_windows=res.n_windows,
            batch_size=self.batch_size, incremental=self.incremental, theta=self.theta,
            max_delta=float(d.max()), seconds=round(time.perf_counter() - started, 3),
            approx=None if self.approx is None else self.approx.describe(self.patch, self.stride),
            approx_error=approx_error,
        )
        return ExplanationMaps(self.name, maps, res.score, meta)


# --- Θ: calibration and storage -------------------------------------------------------------


def calibrate_theta(max_deltas: np.ndarray, same: np.ndarray) -> float:
    """Θ that best separates pairs by max Δ: impostor if max Δ >= Θ, genuine below it.

    The accuracy-maximising cut (``scoring.best_threshold`` with impostors as the positive
    class), as the paper's principle "impostors' maxima above Θ, genuine ones below".
    """
    md = np.asarray(max_deltas, dtype=np.float64)
    impostor = ~np.asarray(same, dtype=bool)
    theta = best_threshold(md, impostor)
    if not theta > 0:
        raise InvalidArgument(f"calibrated Θ = {theta:.4g} is not positive: max Δ does not "
                              "separate the pairs on this reference set")
    return theta


def theta_key(backbone: str, patch: int, stride: int, fill: str) -> str:
    return f"{backbone}:k{patch}:s{stride}:{fill}"


@dataclass(frozen=True)
class ThetaRecord:
    """A calibrated Θ for one backbone and occlusion setting, with where it came from."""

    backbone: str
    patch: int
    stride: int
    fill: str
    theta: float
    fold_thetas: list[float]
    heldout_auc: float
    n_pairs: int
    command: str
    date: str

    @property
    def key(self) -> str:
        return theta_key(self.backbone, self.patch, self.stride, self.fill)


def theta_store(path: Path | None = None) -> RecordStore:
    """Packaged Θ defaults (``explain/data/theta.json``) overlaid with the user's runs."""
    return store_for(THETA_FILE, data_dir(), path)


def load_thetas(path: Path | None = None) -> dict[str, ThetaRecord]:
    return {k: ThetaRecord(**row) for k, row in  # type: ignore[arg-type]
            theta_store(path).load().items()}


def get_theta(backbone: str, patch: int, stride: int, fill: str = DEFAULT_FILL,
              path: Path | None = None) -> ThetaRecord | None:
    """The stored Θ for this setting, or None (callers then show raw Δ)."""
    return load_thetas(path).get(theta_key(backbone, patch, stride, fill))


def save_theta(record: ThetaRecord, path: Path | None = None) -> Path:
    """Store ``record`` in the user's records (or ``path``); return the file written."""
    return theta_store(path).save(record.key, asdict(record))
