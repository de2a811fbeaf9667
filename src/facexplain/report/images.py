"""Turning tensors into pictures (the only layer that leaves torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def tensor_to_image(pixels: torch.Tensor) -> Image.Image:
    """(3, H, W) float RGB in [0, 255] -> PIL image."""
    arr = pixels.detach().clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr))


def save_side_by_side(a: torch.Tensor, b: torch.Tensor, path: Path, scale: int = 2) -> Path:
    """Both aligned faces next to each other, upscaled for viewing."""
    ia, ib = tensor_to_image(a), tensor_to_image(b)
    w, h = ia.size
    canvas = Image.new("RGB", (2 * w + 8, h), (255, 255, 255))
    canvas.paste(ia, (0, 0))
    canvas.paste(ib, (w + 8, 0))
    canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
