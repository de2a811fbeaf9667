"""LFW as a labelled image set (not pairs): every image, its identity, and its gender label.

The neuron analysis needs identities with many images and an attribute; the pairs protocol in
``datasets.lfw`` covers only 7,701 of the 13,233 images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facexplain.errors import InputNotFound


@dataclass(frozen=True)
class LfwPeople:
    """Images sorted by path; ``identity[i]`` names the person, ``female[i]`` the label."""

    paths: list[Path]
    identity: np.ndarray
    female: np.ndarray

    def identities_with(self, min_images: int) -> list[str]:
        """Identities with at least ``min_images`` images, largest first (ties by name)."""
        names, counts = np.unique(self.identity, return_counts=True)
        keep = [(int(c), str(n)) for n, c in zip(names, counts, strict=True) if c >= min_images]
        return [n for _, n in sorted(keep, key=lambda t: (-t[0], t[1]))]

    def index(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}


def read_female_names(path: Path) -> set[str]:
    """Image file names (``Name_0001.jpg``) labelled female; every other LFW image is male."""
    if not path.is_file():
        raise InputNotFound(f"no gender label file at {path}")
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip()}


def load_lfw_people(root: Path | None = None, images: str = "lfw-deepfunneled",
                    female_names: str = "female_names.txt") -> LfwPeople:
    """Every ``<Name>/<Name>_NNNN.jpg`` under ``root/images`` (default: the data root's LFW)
    with its labels."""
    from facexplain import settings

    root = root if root is not None else settings.current().lfw
    image_root = root / images
    if not image_root.is_dir():
        raise InputNotFound(f"no LFW images at {image_root}")
    paths = sorted(image_root.glob("*/*.jpg"))
    if not paths:
        raise InputNotFound(f"no images under {image_root}")
    females = read_female_names(root / female_names)
    return LfwPeople(
        paths=paths,
        identity=np.asarray([p.parent.name for p in paths]),
        female=np.asarray([p.name in females for p in paths], dtype=bool),
    )
