"""x-face occlusion (Knoche, Teepe, Hörmann & Rigoll, "Explainable Model-Agnostic Similarity
and Confidence in Face Verification", WACVW 2023).

Patches of several sizes (7, 14 and 28 px with a 5 px stride on a 112 px crop, scaled to the
crop) are hidden in both faces, one position at a time, and every occluded face is embedded.
Each face's map comes from how its occluded versions score against the other face, by one of
the paper's three pairings:

* ``all`` (their method 1, the default): occluded A_i against *every* occluded B_j, averaged
  over j (and the reverse for face B);
* ``clean`` (method 2): occluded A_i against the clean B;
* ``same`` (method 3): occluded A_i against B occluded at the same place (one map for both).

For patch size k the change s_i − s (their distance deviation, sign flipped to the project's
convention: > 0 where hiding the patch makes the pair look more alike) is divided by k², every
pixel gets the sum over the patches covering it divided by the number of patches, the map is
blurred (Gaussian, kernel = stride, sigma = stride, as their code) and the sizes are averaged.
Patch positions follow the project's occlusion loop (every pixel covered, the last patch flush
with the border), where the released code stops a patch short of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails
from facexplain.explain.fills import gaussian_blur
from facexplain.explain.gradients import check_pair, reference_for, signed_maps
from facexplain.explain.incremental import IncrementalEmbedder, Window
from facexplain.explain.occlusion_loop import occlusion_windows, window_mean
from facexplain.explain.scorer import PairScorer
from facexplain.progress import check_in

PAPER_PATCHES = (7, 14, 28)
PAPER_STRIDE = 5
PAPER_SIZE = 112
PAIRINGS = ("all", "clean", "same")


def scaled(value: int, size: int) -> int:
    """A length given for 112 px crops, on a ``size`` px crop."""
    return max(1, round(value * size / PAPER_SIZE))


@dataclass(frozen=True, kw_only=True)
class XFaceDetails(MethodDetails):
    """Patch sizes (e.g. "7/14/28", px), stride, fill and counts of one x-face map."""

    patches: str
    stride: int
    pairing: str
    fill: str
    n_windows: int
    n_forward: int
    incremental: bool


class XFaceOcclusion(Explainer):
    """Multi-size occlusion of both faces, read by the paper's pairings (see module doc)."""

    name = "xface-occlusion"

    def __init__(self, scorer: PairScorer, patches: tuple[int, ...] | None = None,
                 stride: int | None = None, fill: str | torch.Tensor = "zero",
                 template: str | None = None, batch_size: int = 32,
                 incremental: bool = True) -> None:
        super().__init__(scorer)
        if patches is not None and (not patches or min(patches) < 1):
            raise InvalidArgument(f"x-face patch sizes must be positive, got {patches}")
        if stride is not None and stride < 1:
            raise InvalidArgument(f"x-face stride must be positive, got {stride}")
        if batch_size < 1:
            raise InvalidArgument(f"batch size must be >= 1, got {batch_size}")
        self.scorer = scorer
        self.patches = patches
        self.stride = stride
        self.fill = fill
        self.template = template
        self.batch_size = batch_size
        self.incremental = incremental

    def settings(self, size: int) -> tuple[tuple[int, ...], int]:
        """Patch sizes and stride in pixels on a ``size`` px crop."""
        patches = self.patches or tuple(scaled(k, size) for k in PAPER_PATCHES)
        return patches, self.stride or scaled(PAPER_STRIDE, size)

    def _occluded(self, x: torch.Tensor, fill: torch.Tensor, windows: list[Window]
                  ) -> torch.Tensor:
        """(2, N, D) embeddings of face A and face B with each window filled."""
        model = self.scorer.model
        out = []
        with torch.inference_mode():
            embedder = (IncrementalEmbedder(model, x, self.scorer.geometry,
                                            checked=self.scorer.crop_checks)
                        if self.incremental else None)
            for start in range(0, len(windows), self.batch_size):
                chunk = windows[start : start + self.batch_size]
                check_in("occlusion")
                if embedder is not None:
                    emb = embedder.embed(fill, chunk)
                else:
                    mask = torch.zeros(len(chunk), 1, *x.shape[2:], dtype=torch.bool)
                    for i, (y0, y1, x0, x1) in enumerate(chunk):
                        mask[i, :, y0:y1, x0:x1] = True
                    emb = model(torch.cat([torch.where(mask, fill[0], x[0]),
                                           torch.where(mask, fill[1], x[1])]))
                out.append(emb.reshape(2, len(chunk), -1))
        return torch.cat(out, dim=1).double()

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = check_pair(pair)
        h, w = int(x.shape[2]), int(x.shape[3])
        patches, stride = self.settings(min(h, w))
        if max(patches) > min(h, w) or stride > min(patches):
            raise InvalidArgument(f"x-face patches {patches} with stride {stride} do not fit a "
                                  f"{h}x{w} crop (each patch <= crop, stride <= every patch)")
        fill = reference_for(x, self.fill, self.template)
        clean = F.normalize(self.scorer.embed_pair(x).double(), dim=-1)
        score = float(clean[0] @ clean[1])  # in float64, as the changes
        sums = {p: torch.zeros(2, h, w, dtype=torch.float64) for p in PAIRINGS}
        n_windows = 0
        for k in patches:
            windows = occlusion_windows(h, w, k, stride)
            n_windows += len(windows)
            occ = F.normalize(self._occluded(x, fill, windows), dim=-1)  # (2, N, D)
            every = occ[0] @ occ[1].T  # (N, N): A_i against B_j
            changes = {
                "all": (every.mean(dim=1), every.mean(dim=0)),
                "clean": (occ[0] @ clean[1], occ[1] @ clean[0]),
                "same": ((occ[0] * occ[1]).sum(-1),) * 2,
            }
            for pairing, per_face in changes.items():
                for side, s in enumerate(per_face):
                    total, _ = window_mean(windows, (s - score) / k**2, h, w)
                    sums[pairing][side] += total / len(windows)
        maps: dict[str, torch.Tensor] = {}
        for pairing, total in sums.items():
            blurred = gaussian_blur((total / len(patches)).unsqueeze(1).float(),
                                    float(stride), radius=stride // 2)[:, 0]
            maps["delta" if pairing == "all" else f"delta_{pairing}"] = blurred
        out = signed_maps(maps.pop("delta"))
        out.update(maps)
        meta = XFaceDetails(
            patches="/".join(str(k) for k in patches), stride=stride, pairing="all",
            fill=self.fill if isinstance(self.fill, str) else "custom", n_windows=n_windows,
            n_forward=2 * n_windows + 2, incremental=self.incremental,
            seconds=round(time.perf_counter() - started, 3))
        return ExplanationMaps(self.name, out, self.scorer.similarity(x), meta)
