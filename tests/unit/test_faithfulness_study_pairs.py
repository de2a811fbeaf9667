"""The faithfulness benchmark on a study pair set (look-alike impostors) instead of LFW folds."""

from __future__ import annotations

from pathlib import Path

from facexplain.benchmarks.faithfulness import FaithfulnessConfig, select_pairs
from facexplain.benchmarks.lookalike import StudyPair, write_pairs


def test_study_pair_set_becomes_lfw_pairs_balanced_by_class(tmp_path: Path) -> None:
    pairs = [StudyPair("Ann_Lee/Ann_Lee_0001.jpg", "Ann_Lee/Ann_Lee_0012.jpg", True, .9, .8, True),
             StudyPair("Ann_Lee/Ann_Lee_0001.jpg", "Bo_Wu/Bo_Wu_0003.jpg", False, .7, .5, True),
             StudyPair("Cy_Ng/Cy_Ng_0002.jpg", "Bo_Wu/Bo_Wu_0001.jpg", False, .6, .2, False)]
    path = write_pairs(tmp_path / "set.json", pairs, {})
    chosen = select_pairs(FaithfulnessConfig(n_pairs=2, pairs_file=path))
    assert [(p.name_a, p.index_a, p.name_b, p.index_b, p.same) for p in chosen] == [
        ("Ann_Lee", 1, "Ann_Lee", 12, True), ("Ann_Lee", 1, "Bo_Wu", 3, False)]


def test_cache_key_of_a_folds_run_is_unchanged_by_the_study_option(tmp_path: Path) -> None:
    """Runs made before the option existed resume: their key has no pairs_file field."""
    plain = FaithfulnessConfig().key_fields()
    assert "pairs_file" not in plain and "folds" in plain
    study = FaithfulnessConfig(pairs_file=tmp_path / "set.json").key_fields()
    assert study["pairs_file"] == str(tmp_path / "set.json") and "folds" not in study
