"""Options several methods read: declared once here, listed in each method's ``options``.

The registry merges options by name (``methods.registry.all_options``); a method that declares
its own row under one of these names must agree with it (type, default, bounds), or it is
refused at registration. An option only one method reads lives in that method's module.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from facexplain.errors import InvalidArgument
from facexplain.method_info import MethodOption

if TYPE_CHECKING:
    import torch


def _known_fill(fill: str | torch.Tensor) -> None:
    """A named fill must be one of the fills (a tensor is checked when it is used)."""
    from facexplain.explain.fills import FILLS

    if isinstance(fill, str) and fill not in FILLS:
        raise InvalidArgument(f"unknown fill '{fill}'; valid: {', '.join(FILLS)}")


def _finite(value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise InvalidArgument(f"the threshold must be a finite number, got {value}")


PATCH: MethodOption[int] = MethodOption(
    "patch", int, 16, "Occlusion patch size k (px).", minimum=1, web=True,
    label="Occlusion patch")
STRIDE: MethodOption[int] = MethodOption(
    "stride", int, 8, "Occlusion stride s (px).", minimum=1, web=True, label="stride")
FILL: MethodOption[str | torch.Tensor] = MethodOption(
    "fill", str, "mean-face", "What removed pixels become (occlusion fill, integrated-gradients "
    "baseline): mean-face, channel-mean, zero, blur.", check=_known_fill, typed=False)
SAMPLES: MethodOption[int | None] = MethodOption(
    "samples", int, None, "Samples per face of corrrise, rise and lime (default: each "
    "method's own; rise and lime stop earlier once their map has settled).", minimum=3)
SEED: MethodOption[int] = MethodOption(
    "seed", int, 0, "Seed of the sampling methods' random masks.", minimum=0)
THRESHOLD: MethodOption[float | None] = MethodOption(
    "threshold", float, None, "Decision threshold xSSAB and FGGB split the similarity at "
    "(default: the backbone's calibrated threshold for these weights, else 0).",
    check=_finite)

SAMPLING = (SAMPLES, SEED)
