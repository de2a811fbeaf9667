"""What training a head returns, for both heads (xCos and part filters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import nn

HeadT = TypeVar("HeadT", bound=nn.Module)


@dataclass(frozen=True)
class TrainResult(Generic[HeadT]):
    """The trained head, its loss history per epoch, and what it was trained on."""

    head: HeadT
    history: list[dict[str, float]]
    n_train_images: int
    n_classes: int
    seconds: float
