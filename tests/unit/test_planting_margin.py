"""The planted game's margin follows the backbone's own score spread on the folds the game
never plays, and a set keeps the margin it was built with (sets saved before v3: 0.05)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facexplain.benchmarks import planted_pairs
from facexplain.benchmarks.planted_pairs import (
    LEGACY_MARGIN,
    MARGIN_SHARE,
    PlantedPair,
    PlantedSet,
    planting_margin,
)
from facexplain.datasets.lfw import LfwPair


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle), 0.0], dtype=np.float32)


def test_margin_is_a_share_of_the_spread_outside_the_heldout_folds(monkeypatch, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                   ) -> None:
    images = tmp_path
    # fold 0 (fit): genuine cosine 0.8, impostor 0.2; fold 7 (held out): cosines that would
    # change the answer if they were used
    pairs = [LfwPair("A", 1, "A", 2, True, 0), LfwPair("B", 1, "C", 1, False, 0),
             LfwPair("D", 1, "D", 2, True, 7), LfwPair("E", 1, "F", 1, False, 7)]
    base = _unit(0.0)
    emb = {pairs[0].path_a(images): base, pairs[0].path_b(images): _unit(np.arccos(0.8)),
           pairs[1].path_a(images): base, pairs[1].path_b(images): _unit(np.arccos(0.2))}
    seen: list[list[Path]] = []

    def fake_embed(pipe, paths, cache, progress):  # type: ignore[no-untyped-def]
        seen.append(list(paths))
        return {p: emb[p] for p in paths}, {}

    monkeypatch.setattr(planted_pairs, "embed_photos", fake_embed)
    margin = planting_margin(None, pairs, images, None, False)  # type: ignore[arg-type]
    assert margin == round(MARGIN_SHARE * 0.6, 3)
    assert all(p.parent.name not in ("D", "E", "F") for p in seen[0])  # held-out folds unused
    with pytest.raises(ValueError, match="genuine and impostor"):
        planting_margin(None, pairs[:1] + pairs[2:], images, None, False)  # type: ignore[arg-type]


def test_set_keeps_its_margin_and_old_sets_read_as_the_legacy_margin(tmp_path: Path) -> None:
    pair = PlantedPair("a|b", "altered", 1, "eyes", "x/y.jpg", 0.9, 0.88)
    faces = np.zeros((1, 2, 3, 4, 4), dtype=np.uint8)
    masks = np.zeros((1, 4, 4), dtype=bool)
    built = PlantedSet([pair], faces, masks, 0.01)
    assert PlantedSet.load(built.save(tmp_path / "v3.npz")).margin == 0.01
    old = tmp_path / "v2.npz"
    np.savez_compressed(old, faces=faces, masks=masks, pairs='[{"pair_id": "a|b", "kind": '
                        '"altered", "face": 1, "region": "eyes", "donor": "x/y.jpg", '
                        '"original": 0.9, "similarity": 0.8}]')
    assert PlantedSet.load(old).margin == LEGACY_MARGIN
    # sface: 0.087 of its fold 1-5 spread (0.5756, bench/score_spread.py) is v2's 0.05
    assert round(MARGIN_SHARE * 0.5756, 3) == LEGACY_MARGIN


def test_built_sets_finds_a_backbones_sets_whatever_their_counts(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from facexplain.benchmarks.planted import PlantedConfig, built_sets
    from facexplain.benchmarks.planted_pairs import PLANTED_VERSION

    pipe = SimpleNamespace(scorer=SimpleNamespace(fingerprint=lambda: "abc123def456" + "0" * 52))
    folder = tmp_path / "planted"
    folder.mkdir()
    names = [f"{PLANTED_VERSION}-dlib-resnet-sface-300-60-abc123def456.npz",  # kept
             f"{PLANTED_VERSION}-dlib-resnet-sface-300-100-abc123def456.npz",  # kept
             f"{PLANTED_VERSION}-dlib-resnet-sface-300-60-ffffffffffff.npz",  # other weights
             f"{PLANTED_VERSION}-dlib-resnet-mobileface-300-60-abc123def456.npz",  # donors
             "planted-v2-dlib-resnet-sface-300-60-abc123def456.npz"]  # older version
    for name in names:
        (folder / name).write_bytes(b"")
    cfg = PlantedConfig(backbone="dlib-resnet", cache_dir=tmp_path)
    assert [p.name for p in built_sets(cfg, pipe)] == sorted(names[:2])  # type: ignore[arg-type]
