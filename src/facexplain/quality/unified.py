"""Model-based quality scores that work for any registered backbone (higher = better).

Three candidates, chosen between by the error-versus-discard curves of ``benchmark quality``
(on LFW folds 1-5, reported on the rest):
- ``stability``: the mean cosine between the embedding of the aligned crop and those of five
  slightly changed crops (mirrored; shifted by 2 % of the crop side each way). SER-FIQ's idea
  (a face the model is unsure of moves under small changes) without dropout, which ONNX models
  do not expose; it costs five more forward passes per photo.
- ``ui_distance``: one minus the cosine between the embedding and the centre of the
  embeddings of unrecognisable faces (degraded copies of calibration photos: blur, down-scaling,
  darkness, JPEG, an eye band). Low-quality faces of any person collapse towards one point of
  embedding space (the "unrecognisable identities" cluster of Deng et al. 2023); distance from it
  costs nothing beyond the verdict's own embedding.
- ``norm``: the embedding's length before normalisation. Models trained with a margin loss give
  clear, frontal faces longer embeddings (MagFace made it a training goal; sface shows it
  without); free, but meaningless for a model that normalises its output.
The score a verdict shows is the chosen raw value's rank among the calibration photos (0-1:
the share of LFW calibration photos it beats), so it reads the same on every backbone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Embed = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 in [0, 255] -> (N, D)
KINDS = ("stability", "ui_distance", "norm")
SHIFT = 0.02  # of the crop side


def perturbations(face: np.ndarray) -> np.ndarray:
    """(5, 3, H, W): the crop mirrored and shifted left, right, up, down (edges repeated)."""
    a = np.asarray(face, dtype=np.float32)
    k = max(1, round(SHIFT * a.shape[-1]))
    pad = np.pad(a, ((0, 0), (k, k), (k, k)), mode="edge")
    h, w = a.shape[1:]
    return np.stack([a[:, :, ::-1], pad[:, k:k + h, :w], pad[:, k:k + h, 2 * k:],
                     pad[:, :h, k:k + w], pad[:, 2 * k:, k:k + w]])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def stability(embed: Embed, faces: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Per face: mean cosine of its embedding with its five perturbed crops' embeddings."""
    out = np.empty(len(faces))
    for i, face in enumerate(faces):
        moved = _unit(embed(np.ascontiguousarray(perturbations(face))))
        out[i] = float((moved @ _unit(embeddings[i])).mean())
    return out


def ui_distance(embeddings: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Per face: one minus the cosine to the unrecognisable-face centre."""
    return 1.0 - _unit(embeddings) @ _unit(centre)


def rank_score(raw: float, quantiles: list[float]) -> float:
    """The share of calibration photos a raw value beats (``quantiles``: 101 percentiles)."""
    q = np.asarray(quantiles, dtype=np.float64)
    return float(np.clip(np.interp(raw, q, np.linspace(0.0, 1.0, q.size)), 0.0, 1.0))
