"""Catch trials: chosen from the study's own real LFW photos (identical, or a woman with a man
by LFW's gender labels), mixed in at seeded places; the screening rule allows one slip."""

from __future__ import annotations

from pathlib import Path

import pytest

from facexplain import settings
from facexplain.errors import InvalidArgument
from facexplain.study.catch import (
    choose_catch_pairs,
    default_min_correct,
    identity,
    mix_in,
    passes,
    rule_text,
)
from tests.study.conftest import lfw_study_pairs


def study_photos(n_pairs: int) -> list[str]:
    return [f for p in lfw_study_pairs(n_pairs // 2) for f in (p.a, p.b)]


def test_catch_pairs_are_identical_or_a_woman_and_a_man() -> None:
    root = settings.current().lfw_images
    females = set((root.parent / "female_names.txt").read_text().split())
    photos = study_photos(40)
    got = choose_catch_pairs(photos, 5, root, seed=3)
    assert [c.kind for c in got] == ["catch-identical"] * 3 + ["catch-different"] * 2
    used = [f for c in got for f in {c.a, c.b}]
    assert len(used) == len(set(used)) == 3 + 4 and set(used) <= set(photos)
    for c in got:
        assert (root / c.a).is_file() and (root / c.b).is_file()
        if c.same:
            assert c.a == c.b
        else:
            assert (Path(c.a).name in females) != (Path(c.b).name in females)
            assert identity(c.a) != identity(c.b)
    assert choose_catch_pairs(photos, 5, root, seed=3) == got  # seeded
    assert choose_catch_pairs(photos, 5, root, seed=4) != got
    assert choose_catch_pairs(photos, 0, root) == []
    with pytest.raises(InvalidArgument, match="0 or more"):
        choose_catch_pairs(photos, -1, root)
    with pytest.raises(InvalidArgument, match="too few for 30 catch pairs"):
        choose_catch_pairs(photos[:8], 30, root)


def test_without_labels_or_model_the_different_pairs_are_flagged(tmp_path: Path) -> None:
    """A folder with no female_names.txt beside it and no model: different people, unchecked,
    and the operator is told so."""
    src = settings.current().lfw_images
    photos = study_photos(8)
    root = tmp_path / "images"
    for f in set(photos):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).symlink_to(src / f)
    said: list[str] = []
    got = choose_catch_pairs(photos, 4, root, seed=0, log=said.append)
    diff = [c for c in got if not c.same]
    assert len(diff) == 2 and all(identity(c.a) != identity(c.b) for c in diff)
    assert len(said) == 1 and "not checked to look unlike" in said[0]


def test_rule_allows_one_slip_over_both_rounds() -> None:
    assert default_min_correct(4) == 7 and default_min_correct(1) == 1
    assert default_min_correct(0) == 0
    assert passes(7, 7) and not passes(6, 7) and passes(0, 0)
    assert "at least 7 of 8 catch answers" in rule_text(4, 7)
    assert "every participant is kept" in rule_text(0, 0)


def test_catch_items_go_to_seeded_places_among_the_real_ones() -> None:
    real = list(range(50))
    placed = {tuple(i for i, x in enumerate(mix_in(real, ["c1", "c2"], s)) if isinstance(x, str))
              for s in range(6)}
    assert len(placed) > 3  # the places change with the seed
    for seed in range(6):
        mixed = mix_in(real, ["c1", "c2"], seed)
        assert [x for x in mixed if isinstance(x, int)] == real and len(mixed) == 52
        assert mixed == mix_in(real, ["c1", "c2"], seed)
