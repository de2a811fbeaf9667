"""Similar-looking pair mining: nearest same-gender impostors, a subset near a target accuracy,
and a real mining run on LFW with dlib's ResNet mining for sface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facexplain import settings
from facexplain.benchmarks.lookalike import (
    StudyPair,
    embed_images,
    mine_pairs,
    model_accuracy,
    nearest_impostors,
    pick_near_accuracy,
    read_pairs_file,
    write_pairs,
)
from facexplain.datasets.lfw import read_pairs
from facexplain.errors import InvalidArgument


def test_nearest_impostors_skip_same_identity_and_other_gender() -> None:
    emb = np.asarray([[1, 0], [0.99, 0.14], [0.98, 0.2], [0.6, 0.8], [0, 1]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = ["ann", "ann", "bob", "cy", "dee"]
    female = [True, True, False, True, True]
    got = nearest_impostors(emb, ids, female)
    pairs = {(ids[i], ids[j]) for i, j, _ in got} | {(ids[j], ids[i]) for i, j, _ in got}
    assert ("ann", "ann") not in pairs and ("ann", "bob") not in pairs  # same / other gender
    assert ("ann", "cy") in pairs and ("cy", "dee") in pairs
    scores = [s for _, _, s in got]
    assert scores == sorted(scores, reverse=True)
    assert len({frozenset((ids[i], ids[j])) for i, j, _ in got}) == len(got)  # each pair once
    assert nearest_impostors(emb[2:3], ["bob"], [False]) == []


def pool(n: int, wrong: int, same: bool) -> list[StudyPair]:
    return [StudyPair(f"{same}{k}a", f"{same}{k}b", same, k / n, 0.0,
                      (not same) if k < wrong else same) for k in range(n)]


def test_subset_hits_the_target_accuracy_with_both_kinds_balanced() -> None:
    pairs = pool(50, 10, True) + pool(50, 10, False)
    for n, target in ((20, 0.75), (200 // 10, 0.9), (40, 0.5)):
        got = pick_near_accuracy(pairs, n, target, seed=3)
        assert len(got) == n and len({(p.a, p.b) for p in got}) == n
        assert sum(p.same for p in got) == n // 2
        assert model_accuracy(got) == pytest.approx(target)
    few_errors = pick_near_accuracy(pool(50, 1, True) + pool(50, 1, False), 20, 0.75)
    assert model_accuracy(few_errors) == pytest.approx(0.9)  # only 2 errors exist
    with pytest.raises(InvalidArgument, match="even"):
        pick_near_accuracy(pairs, 7, 0.75)
    with pytest.raises(InvalidArgument, match="only 50 genuine"):
        pick_near_accuracy(pairs, 120, 0.75)


def test_pair_file_round_trip_and_refusals(tmp_path: Path) -> None:
    pairs = pool(3, 1, True)
    path = write_pairs(tmp_path / "p.json", pairs, {"model": "sface"})
    back, meta = read_pairs_file(path)
    assert back == pairs and meta["model"] == "sface" and meta["n"] == 3
    bad = tmp_path / "bad.json"
    bad.write_text(path.read_text().replace('"True0a"', '"../../etc/passwd"'))
    with pytest.raises(InvalidArgument, match="leaves the image folder"):
        read_pairs_file(bad)
    bad.write_text("{}")
    with pytest.raises(InvalidArgument, match="not a study pair set"):
        read_pairs_file(bad)


@pytest.mark.long
def test_real_mining_finds_closer_impostors_than_lfw_random_ones() -> None:
    with pytest.raises(InvalidArgument, match="must differ"):
        mine_pairs("sface", "sface")
    pairs, meta = mine_pairs("dlib-resnet", "sface", folds=1, target=None, limit=30)
    genuine = [p for p in pairs if p.same]
    impostors = [p for p in pairs if not p.same]
    assert len(genuine) == 30 and len(impostors) == 30 and meta["mining_model"] == "dlib-resnet"
    females = set((settings.current().lfw / "female_names.txt").read_text().split())
    for p in impostors:
        assert Path(p.a).parent != Path(p.b).parent
        assert (Path(p.a).name in females) == (Path(p.b).name in females)
    # LFW's own impostor pairs among the same lines, scored by the same mining model
    s = settings.current()
    official = [p for p in read_pairs(s.lfw_pairs) if not p.same][:30]
    paths = sorted({q for p in official for q in (p.path_a(s.lfw_images),
                                                   p.path_b(s.lfw_images))})
    emb = dict(zip(paths, embed_images("dlib-resnet", paths, False), strict=True))
    random_scores = [float(emb[p.path_a(s.lfw_images)] @ emb[p.path_b(s.lfw_images)])
                     for p in official]
    mined_scores = [p.mining_score for p in impostors]
    assert np.mean(mined_scores) > np.mean(random_scores) + 0.05
    assert min(mined_scores) > np.median(random_scores)


def test_occlusion_statistics_take_a_study_set_evenly_with_ten_pseudo_folds(
        tmp_path: Path) -> None:
    """Fig. 3 on look-alike pairs: the chosen pairs span each class of the mined pool (the
    most and the least alike impostor both in), every pseudo-fold holds both classes, and a
    set too small is refused in one line."""
    from facexplain.benchmarks.occlusion import study_selection

    def pair(i: int, same: bool) -> StudyPair:
        name = f"P{i:03d}"
        other = name if same else f"Q{i:03d}"
        return StudyPair(f"{name}/{name}_0001.jpg", f"{other}/{other}_0002.jpg", same,
                         1 - i / 100, 0.5, same)

    path = write_pairs(tmp_path / "set.json",
                       [pair(i, True) for i in range(40)] + [pair(i, False) for i in range(60)],
                       {})
    chosen = study_selection(path, 20)
    impostors = [p for p in chosen if not p.same]
    assert len(chosen) == 40 and len(impostors) == 20
    assert impostors[0].name_a == "P000" and impostors[-1].name_a == "P059"
    assert {p.fold for p in chosen if p.same} == {p.fold for p in impostors} == set(range(10))
    with pytest.raises(InvalidArgument, match="need 50"):
        study_selection(path, 50)
