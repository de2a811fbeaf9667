"""Galleries: identities from folder names, a save/load round trip that searches the same,
and identity ranking (one row per person, at their closest photo, with calibrated verdicts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facexplain.errors import InputNotFound, InvalidArgument
from facexplain.scoring import Calibration
from facexplain.search.codes import CodeRecipe
from facexplain.search.gallery import (
    GallerySearch,
    gallery_from_embeddings,
    gallery_photos,
    load_gallery,
)

CAL = Calibration("test", 0.5, 20.0, -10.0, "test", "2026-12-01")


def people(n_ids: int, per_id: int, d: int = 32, seed: int = 0) -> tuple[np.ndarray,
                                                                       list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, d))
    x = np.repeat(centres, per_id, axis=0) + 0.3 * rng.standard_normal((n_ids * per_id, d))
    return x.astype(np.float32), [f"person_{i:03d}" for i in range(n_ids) for _ in range(per_id)]


def test_identity_is_the_folder_name(tmp_path: Path) -> None:
    for rel in ("Ann/a1.jpg", "Ann/a2.PNG", "Bob/x/b1.jpeg", "carl.jpg", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = {p.name: ident for p, ident in gallery_photos(tmp_path)}
    assert got == {"a1.jpg": "Ann", "a2.PNG": "Ann", "b1.jpeg": "x", "carl.jpg": "carl"}
    with pytest.raises(InputNotFound, match="no such directory"):
        gallery_photos(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFound, match="no photos"):
        gallery_photos(tmp_path / "empty")


def test_gallery_round_trip_searches_the_same(tmp_path: Path) -> None:
    x, ids = people(300, 4)
    g = gallery_from_embeddings("sface", [f"/p/{i}.jpg" for i in range(len(x))], ids, x,
                                CodeRecipe("itq", 64))
    assert g.encoder.method == "itq" and g.codes.n_bits == 64
    back = load_gallery(g.save(tmp_path / "g.npz"))
    assert back.paths == g.paths and back.identities == g.identities
    assert back.backbone == "sface" and np.array_equal(back.embeddings, g.embeddings)
    assert np.array_equal(back.codes.words, g.codes.words)
    probe = x[5] + 0.1
    assert (GallerySearch(back, CAL, short_list=100).identities(probe, 5)
            == GallerySearch(g, CAL, short_list=100).identities(probe, 5))


def test_identities_are_ranked_once_each_at_their_closest_photo() -> None:
    x, ids = people(50, 3, seed=1)
    g = gallery_from_embeddings("sface", [f"/p/{i}.jpg" for i in range(len(x))], ids, x,
                                CodeRecipe("sign"))
    probe = x[7] + 0.05  # person_002's second photo, nudged
    got = GallerySearch(g, CAL).identities(probe, 4)
    assert [c.rank for c in got] == [1, 2, 3, 4]
    assert got[0].identity == "person_002" and got[0].photo == "/p/7.jpg"
    assert len({c.identity for c in got}) == 4
    assert all(a.similarity >= b.similarity for a, b in zip(got, got[1:], strict=False))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ (probe / np.linalg.norm(probe))
    assert got[0].similarity == pytest.approx(float(sims.max()), abs=1e-5)
    assert got[0].same and not got[1].same  # calibrated threshold 0.5
    assert got[0].confidence == pytest.approx(CAL.confidence(got[0].similarity))


def test_a_person_with_many_photos_does_not_hide_the_others() -> None:
    x, ids = people(6, 2, seed=3)
    rng = np.random.default_rng(4)
    crowd = x[0] + 0.05 * rng.standard_normal((400, x.shape[1])).astype(np.float32)
    g = gallery_from_embeddings("sface", [str(i) for i in range(412)],
                                ["crowd"] * 400 + ids, np.concatenate([crowd, x]),
                                CodeRecipe("sign"))
    got = GallerySearch(g, CAL).identities(x[0], 5)
    assert {"crowd", "person_000"} <= {c.identity for c in got} and len(got) == 5
    assert len({c.identity for c in got}) == 5


def test_short_list_search_of_a_big_gallery_matches_exact_search() -> None:
    x, ids = people(1500, 2, seed=2)
    g = gallery_from_embeddings("sface", [str(i) for i in range(len(x))], ids, x,
                                CodeRecipe("itq", 128))
    probes = x[::97] + 0.1
    exact = GallerySearch(g, CAL, short_list=len(x))
    fast = GallerySearch(g, CAL, short_list=500)
    assert fast.short_list < len(g)  # the short-list path is the one under test
    same = [exact.identities(p, 3)[0].identity == fast.identities(p, 3)[0].identity
            for p in probes]
    assert all(same)


def test_small_galleries_fall_back_to_sign_codes() -> None:
    x, ids = people(5, 2)
    g = gallery_from_embeddings("sface", [str(i) for i in range(10)], ids, x,
                                CodeRecipe("itq", 256))
    assert g.encoder.method == "sign"


def test_not_a_gallery_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "g.npz"
    np.savez(bad, words=np.zeros(3))
    with pytest.raises(InvalidArgument, match="not a facexplain gallery"):
        load_gallery(bad)
    with pytest.raises(InputNotFound):
        load_gallery(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_gallery(tmp_path / "junk.npz")
