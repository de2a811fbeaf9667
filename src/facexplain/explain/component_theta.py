"""Θ_c: each facial component's own normaliser, per backbone, weights and population.

Why a quantile of genuine pairs: Θ for pixels (``explain.theta``) is the level genuine pairs
stay under; for a component the same question is "does it differ more than it does between
two photos of one person?". Θ_c is the ``QUANTILE`` (0.99) of the component's score over
genuine pairs of LFW calibration folds 1-5 (never the held-out 6-10): with seven components
tested per pair, 0.99 each keeps the share of genuine pairs with any false finding near or
below 0.05 (at 0.95 each it could reach a third). Written by ``facexplain benchmark
component-theta --write`` into the user's records; shipped defaults in
``explain/data/component_theta.json`` (keyed by backbone, weights fingerprint, population and
variant: new weights are "not calibrated", never judged by another model's Θ_c).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facexplain.explain.fills import data_dir
from facexplain.records import RecordStore, store_for
from facexplain.types import COMPONENTS

THETA_FILE = "component_theta.json"
QUANTILE = 0.99
DEFAULT_POPULATION = "lfw"


@dataclass(frozen=True)
class ComponentTheta:
    """Θ_c of every component for one backbone's weights, population and variant."""

    backbone: str
    weights: str  # the scorer's weights fingerprint (first 16 hex digits)
    population: str
    variant: str
    values: dict[str, float]
    quantile: float = QUANTILE
    n_pairs: int = 0
    command: str = ""
    date: str = ""


def theta_key(backbone: str, weights: str, population: str, variant: str) -> str:
    return f"{backbone}@{weights[:16]}:{population}:{variant}"


def store() -> RecordStore:
    return store_for(THETA_FILE, data_dir())


def get_component_theta(backbone: str, weights: str | None, variant: str,
                        population: str = DEFAULT_POPULATION) -> ComponentTheta | None:
    """The stored Θ_c for these weights (None: not calibrated)."""
    if weights is None:
        return None
    row = store().get(theta_key(backbone, weights, population, variant))
    if row is None:
        return None
    values = row["values"]
    assert isinstance(values, dict)
    return ComponentTheta(str(row["backbone"]), str(row["weights"]), str(row["population"]),
                          str(row["variant"]), {str(k): float(v) for k, v in values.items()},
                          float(str(row.get("quantile", QUANTILE))),
                          int(str(row.get("n_pairs", 0))),
                          str(row.get("command", "")), str(row.get("date", "")))


def calibrate(scores: dict[str, list[float]], quantile: float = QUANTILE) -> dict[str, float]:
    """Θ_c = the quantile of each component's genuine-pair scores (rounded to 1e-5)."""
    return {c: round(float(np.quantile(np.asarray(scores[c]), quantile)), 5)
            for c in COMPONENTS if scores.get(c)}


def save_component_theta(theta: ComponentTheta) -> str:
    """Write ``theta`` into the user's records; returns the path written."""
    row: dict[str, object] = {
        "backbone": theta.backbone, "weights": theta.weights[:16],
        "population": theta.population, "variant": theta.variant, "values": theta.values,
        "quantile": theta.quantile, "n_pairs": theta.n_pairs, "command": theta.command,
        "date": theta.date}
    key = theta_key(theta.backbone, theta.weights, theta.population, theta.variant)
    return str(store().save(key, row))
