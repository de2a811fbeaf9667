"""Padding arithmetic shared by the graph front ends (TF.js 'SAME', ONNX auto_pad) and dlib.

One place for the rule, so the ONNX and TF.js executors cannot drift apart on where the odd
pixel goes, and one place for the speed trick: symmetric pads go to the conv/pool itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1,
              odd_after: bool = True) -> tuple[int, int]:
    """TF 'SAME' (ONNX SAME_UPPER) padding for one axis: (before, after).

    The odd pixel goes after; ``odd_after=False`` gives ONNX's SAME_LOWER (odd pixel before).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if odd_after else (big, small)


def split_pads(x: torch.Tensor, begin: Sequence[int], end: Sequence[int],
               value: float = 0.0) -> tuple[torch.Tensor, tuple[int, ...] | int]:
    """(input, padding argument) for a torch conv/pool over the last ``len(begin)`` axes.

    Symmetric pads go to the conv/pool itself (faster); asymmetric ones become an ``F.pad``.
    """
    if list(begin) == list(end):
        return x, tuple(begin)
    torch_pads: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        torch_pads += [b, e]
    return F.pad(x, torch_pads, value=value), 0


def grow_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero rows at the bottom and columns at the right until ``x`` is height x width."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    return F.pad(x, (0, dw, 0, dh)) if dh or dw else x
