"""Θ of Eq. 1 (deep difference analysis): calibrated per backbone and occlusion setting, stored.

Θ is the max-Δ cut that best separates genuine from impostor pairs on a reference set, so
that clip(Δ / Θ, 0, 1) keeps genuine pairs dark. Packaged defaults live in
``explain/data/theta.json``; the user's own calibrations overlay them (``records``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facexplain.errors import InvalidArgument
from facexplain.explain.fills import DEFAULT_FILL, data_dir
from facexplain.records import RecordStore, store_for
from facexplain.scoring import best_threshold

THETA_FILE = "theta.json"


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
    weights: str | None = None  # fingerprint of the weights measured (None: unknown)

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
              path: Path | None = None, weights: str | None = None) -> ThetaRecord | None:
    """The stored Θ for this setting, or None (callers then show raw Δ). With ``weights``,
    only a Θ measured on those very weights counts (an edited model gets none)."""
    record = load_thetas(path).get(theta_key(backbone, patch, stride, fill))
    if record is None or (weights is not None and record.weights != weights):
        return None
    return record


def save_theta(record: ThetaRecord, path: Path | None = None) -> Path:
    """Store ``record`` in the user's records (or ``path``); return the file written."""
    return theta_store(path).save(record.key, asdict(record))
