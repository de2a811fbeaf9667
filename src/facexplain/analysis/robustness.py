"""Robustness of activation patterns to occlusion (DeepID2+, Sec. "robust").

Faces are occluded by random free-form brush strokes covering a growing share of the face
(``datasets.occlusion.random_mask``, shared with the xCos work). For the top layer (the
embedding), one intermediate node and the LBP baseline we measure the fraction of bits that
flip against the clean face, and the LFW verification accuracy of clean-vs-occluded pairs.

Bits: network neurons are binarised at 0 (activated or not). LBP histogram bins are never
negative, so each LBP dimension is binarised at its median over the clean faces instead
(every bit then splits the faces in half, as an activated neuron roughly does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facexplain.analysis.lbp import DEFAULT_LBP, LbpConfig, lbp_features
from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.datasets.occlusion import apply_mask, default_region, random_mask
from facexplain.errors import InvalidArgument
from facexplain.metrics.verification import kfold_accuracy
from facexplain.scoring import cosine
from facexplain.search.binary import BinaryCodes, encode, hamming, hamming_similarity, pack_bits


@dataclass(frozen=True)
class LayerFeatures:
    """What one pass over a set of faces keeps: the float embedding, the intermediate node's
    activation bits (packed: a 50,000-unit map is 6 KB per face), and LBP descriptors."""

    embedding: np.ndarray
    node_bits: BinaryCodes
    lbp: np.ndarray


class LayerProbe:
    """Runs a backbone on batches of aligned faces and keeps :class:`LayerFeatures`."""

    def __init__(self, model: FaceModel, node: str, batch_size: int = 32,
                 lbp: LbpConfig = DEFAULT_LBP) -> None:
        self.model, self.node, self.batch_size, self.lbp = model, node, batch_size, lbp

    @torch.inference_mode()
    def __call__(self, faces: torch.Tensor) -> LayerFeatures:
        """``faces``: (N, 3, S, S) pixels in [0, 255] (any dtype)."""
        embs, bits, lbps = [], [], []
        for start in range(0, faces.shape[0], self.batch_size):
            x = faces[start : start + self.batch_size].float()
            out = self.model.forward_nodes(x, (EMBEDDING, self.node))
            embs.append(out[EMBEDDING].float().numpy())
            bits.append(pack_bits((out[self.node].flatten(1) > 0).numpy()))
            lbps.append(lbp_features(x, self.lbp))
        n_bits = int(np.prod(self.node_shape(faces)))
        return LayerFeatures(np.concatenate(embs), BinaryCodes(np.concatenate(bits), n_bits),
                             np.concatenate(lbps))

    @torch.inference_mode()
    def node_shape(self, faces: torch.Tensor) -> tuple[int, ...]:
        out = self.model.forward_nodes(faces[:1].float(), (self.node,))
        return tuple(int(s) for s in out[self.node].shape[1:])


def occlude(faces: torch.Tensor, area: float, seed: int, region: np.ndarray | None = None,
            fill: float = 0.0) -> tuple[torch.Tensor, float]:
    """Each face hidden by its own random mask (seeded by ``seed`` and the face's index, so
    every run and backbone sees the same masks); returns the faces and the mean mask area."""
    if area <= 0:
        return faces, 0.0
    size = int(faces.shape[-1])
    reg = default_region(size) if region is None else np.asarray(region, dtype=bool)
    out = torch.empty_like(faces)
    covered = []
    for i in range(faces.shape[0]):
        rng = np.random.default_rng([seed, i, round(area * 1000)])
        mask = random_mask(size, area, rng, reg)
        out[i] = apply_mask(faces[i], mask, fill).to(faces.dtype)
        covered.append(float(mask[reg].mean()))
    return out, float(np.mean(covered))


@dataclass(frozen=True)
class RobustnessPoint:
    area: float
    measured_area: float
    flipped: dict[str, float]
    accuracy: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {"area": self.area, "measured_area": round(self.measured_area, 4),
                "flipped_bits": {k: round(v, 4) for k, v in self.flipped.items()},
                "accuracy": {k: round(v, 4) for k, v in self.accuracy.items()}}


def flip_fraction(a: BinaryCodes, b: BinaryCodes) -> float:
    """Mean share of bits that differ between codes a[i] and b[i]."""
    return float(hamming(a, b).mean() / a.n_bits)


@dataclass(frozen=True)
class RobustnessCurve:
    """The points, the clean features, and each representation's clean bit distance between
    different people (impostor pairs) and the same person (genuine pairs): the scale a flip
    rate is read against (a code that flips as many bits as another person's face differs by
    has forgotten who it was)."""

    points: list[RobustnessPoint]
    clean: LayerFeatures
    impostor_distance: dict[str, float]
    genuine_distance: dict[str, float]


def robustness_curve(
    probe: Callable[[torch.Tensor], LayerFeatures], faces: torch.Tensor,
    pair_a: np.ndarray, pair_b: np.ndarray, same: np.ndarray, folds: np.ndarray,
    areas: Sequence[float], seed: int = 0, region: np.ndarray | None = None,
    clean: LayerFeatures | None = None,
    progress: Callable[[float], None] | None = None,
    top_thresholds: np.ndarray | float = 0.0,
) -> RobustnessCurve:
    """Flip rates and k-fold verification accuracy (face A clean, face B occluded) per area.

    ``faces`` are the distinct aligned faces the pairs index (``pair_a``, ``pair_b``); every
    face is occluded once per area, so flip rates average over all of them. Top-layer bits
    are ``embedding > top_thresholds`` (0: activated; per-neuron medians for models whose
    embedding is never negative).
    """
    if not (len(pair_a) == len(pair_b) == len(same) == len(folds)):
        raise InvalidArgument("pair indices, labels and folds must have equal length")
    clean = clean if clean is not None else probe(faces)
    lbp_median = np.median(clean.lbp, axis=0)
    clean_codes = {"top": encode(clean.embedding, top_thresholds), "node": clean.node_bits,
                   "lbp": encode(clean.lbp, lbp_median)}
    same_b = np.asarray(same, dtype=bool)
    between = {k: hamming(c.take(pair_a), c.take(pair_b)) / c.n_bits
               for k, c in clean_codes.items()}
    points = []
    for area in areas:
        if progress is not None:
            progress(area)
        occluded, measured = occlude(faces, area, seed, region)
        occ = probe(occluded) if area > 0 else clean
        occ_codes = {"top": encode(occ.embedding, top_thresholds), "node": occ.node_bits,
                     "lbp": encode(occ.lbp, lbp_median)}
        flipped = {k: flip_fraction(clean_codes[k], occ_codes[k]) for k in clean_codes}
        scores = {
            "top_cosine": _cosine(clean.embedding[pair_a], occ.embedding[pair_b]),
            "top_hamming": hamming_similarity(clean_codes["top"].take(pair_a),
                                              occ_codes["top"].take(pair_b)),
            "node_hamming": hamming_similarity(clean.node_bits.take(pair_a),
                                               occ.node_bits.take(pair_b)),
            "lbp_cosine": _cosine(clean.lbp[pair_a], occ.lbp[pair_b]),
        }
        accuracy = {k: kfold_accuracy(s, same, folds).accuracy_mean for k, s in scores.items()}
        points.append(RobustnessPoint(float(area), measured, flipped, accuracy))
    return RobustnessCurve(
        points, clean,
        impostor_distance={k: float(d[~same_b].mean()) for k, d in between.items()},
        genuine_distance={k: float(d[same_b].mean()) for k, d in between.items()},
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cosine(torch.from_numpy(a), torch.from_numpy(b)).numpy().astype(np.float64)
