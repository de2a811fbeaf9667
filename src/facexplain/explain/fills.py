"""What an occluded patch is replaced with: the mean face (the paper's choice) or a simpler fill.

The fill decides what "hiding a region" means to the model, so it is part of every occlusion
setting (Θ is calibrated per fill). The mean aligned face of a reference set is stored per
alignment template as a small PNG in ``explain/data``, built by ``facexplain benchmark
mean-face`` (the command and its inputs are recorded in ``data/mean_faces.json``).
"""

from __future__ import annotations

import hashlib
import math
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from facexplain.align.templates import TEMPLATES
from facexplain.errors import AssetMissing, InvalidArgument
from facexplain.records import RecordStore, store_for

FILLS = ("mean-face", "channel-mean", "zero", "blur")
DEFAULT_FILL = "mean-face"
MEAN_FACES_RECORD = "mean_faces.json"
BUILD_COMMAND = "facexplain benchmark mean-face"


def data_dir() -> Path:
    return Path(str(resources.files("facexplain.explain").joinpath("data")))


def mean_face_store(directory: Path | None = None) -> RecordStore:
    """Mean-face provenance rows and PNGs: packaged defaults, then the user's builds."""
    path = directory / MEAN_FACES_RECORD if directory is not None else None
    return store_for(MEAN_FACES_RECORD, data_dir(), path)


def mean_face_path(template: str, directory: Path | None = None) -> Path:
    """The mean face PNG in use for ``template`` (a user build wins over the packaged one)."""
    name = f"mean_face_{template}.png"
    if directory is not None:
        return directory / name
    return mean_face_store().locate(name) or data_dir() / name


def template_for_size(height: int, width: int) -> str:
    """The alignment template whose crop has this size (each template's size is unique)."""
    matches = [t.name for t in TEMPLATES.values() if t.size == height == width]
    if len(matches) != 1:
        sizes = ", ".join(f"{t.name} {t.size}x{t.size}" for t in TEMPLATES.values())
        raise InvalidArgument(
            f"no mean face for {height}x{width} crops (templates: {sizes}); "
            "pass template= or use another fill"
        )
    return matches[0]


def load_mean_face(template: str, directory: Path | None = None) -> torch.Tensor:
    """The stored mean aligned face of ``template``: (3, S, S) float RGB in [0, 255]."""
    if template not in TEMPLATES:
        raise InvalidArgument(f"unknown template '{template}'; valid: {', '.join(TEMPLATES)}")
    path = mean_face_path(template, directory)
    if not path.is_file():
        raise AssetMissing(f"mean face for '{template}' not found at {path}; run "
                           f"`{BUILD_COMMAND} --template {template}`")
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def mean_face_digest(template: str, directory: Path | None = None) -> str:
    """Short hash of the stored mean face, so cached maps are keyed by the fill actually used."""
    return hashlib.sha1(mean_face_path(template, directory).read_bytes()).hexdigest()[:12]


def gaussian_blur(x: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) images, reflect-padded so edges keep their tone.

    ``radius``: half the kernel width (default 3 sigma); a method that follows a paper's
    kernel size (x-face occlusion, FGGB) passes it.
    """
    if sigma <= 0:
        raise InvalidArgument(f"blur sigma must be positive, got {sigma}")
    radius = max(1, math.ceil(3 * sigma)) if radius is None else max(1, radius)
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)  # reflect padding needs pad < size
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    c = x.shape[1]
    kx = kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kx, groups=c)
    return F.conv2d(y, ky, groups=c)


def make_fill(
    pair: torch.Tensor,
    kind: str = DEFAULT_FILL,
    template: str | None = None,
    blur_sigma: float | None = None,
    directory: Path | None = None,
) -> torch.Tensor:
    """The replacement pixels for each face of ``pair`` (2, 3, H, W), same shape as the pair.

    ``mean-face``: the reference set's mean aligned face (both faces get the same pixels);
    ``channel-mean``: one constant per channel, the mean over both faces of this pair;
    ``zero``: black; ``blur``: each face's own Gaussian blur (sigma ``blur_sigma``, default
    H/28, 4 px on a 112 crop), which hides detail but keeps the colour.
    """
    if pair.ndim != 4 or pair.shape[:2] != (2, 3):
        raise InvalidArgument(f"pair must be a (2, 3, H, W) tensor, got {tuple(pair.shape)}")
    h, w = int(pair.shape[2]), int(pair.shape[3])
    x = pair.detach().float()
    if kind == "mean-face":
        face = load_mean_face(template or template_for_size(h, w), directory)
        if face.shape[1:] != (h, w):
            raise InvalidArgument(f"mean face of '{template}' is {tuple(face.shape[1:])}, "
                                  f"the pair is {h}x{w}")
        return face.unsqueeze(0).expand(2, -1, -1, -1).clone()
    if kind == "channel-mean":
        return x.mean(dim=(0, 2, 3), keepdim=True).expand(2, -1, h, w).clone()
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "blur":
        return gaussian_blur(x, blur_sigma if blur_sigma is not None else h / 28)
    raise InvalidArgument(f"unknown fill '{kind}'; valid: {', '.join(FILLS)}")


def save_mean_face(
    face: torch.Tensor, template: str, record: dict[str, object], directory: Path | None = None
) -> Path:
    """Write the mean face PNG (uint8) and its provenance row (user records, or ``directory``)."""
    store = mean_face_store(directory)
    d = store.user
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"mean_face_{template}.png"
    rgb = face.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(rgb).save(path)
    store.save(template, {"file": path.name, **record})
    return path
