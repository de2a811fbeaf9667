"""Study fixtures: pair sets of real LFW pairs and study folders made by ``create_study``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from facexplain import settings
from facexplain.benchmarks.lookalike import StudyPair, write_pairs
from facexplain.datasets.lfw import read_pairs
from facexplain.method_info import ExplainOptions
from facexplain.study.create import CreatedStudy, create_study

# Occlusion on a 2x2 grid: real maps from the real model, in seconds.
COARSE = ExplainOptions(patch=56, stride=56)


def lfw_study_pairs(n_per_class: int) -> list[StudyPair]:
    """The first genuine and impostor lines of LFW's pairs.txt, alternating (scores are
    filled in by the study creation, which runs the model)."""
    s = settings.current()
    lines = read_pairs(s.lfw_pairs)
    genuine = [p for p in lines if p.same][:n_per_class]
    impostor = [p for p in lines if not p.same][:n_per_class]
    out = []
    for g, i in zip(genuine, impostor, strict=True):
        for p in (g, i):
            out.append(StudyPair(str(p.path_a(s.lfw_images).relative_to(s.lfw_images)),
                                 str(p.path_b(s.lfw_images).relative_to(s.lfw_images)),
                                 p.same, 0.0, 0.5 if p.same else 0.1, True))
    return out


MakeStudy = Callable[..., CreatedStudy]


@pytest.fixture()
def make_plain_study(tmp_path: Path) -> MakeStudy:
    """A study without help pictures (no model runs): for storage, flow and load tests."""
    def make(n_pairs: int = 8, conditions: tuple[str, ...] = ("none", "occlusion"),
             per_condition: int = 2, scale: int = 5, name: str = "s",
             catch: int = 0) -> CreatedStudy:
        pairs = lfw_study_pairs(n_pairs // 2)
        pairs = [replace(p, model_same=p.same if k % 4 else not p.same)
                 for k, p in enumerate(pairs)]  # the "model" is wrong on every 4th pair
        src = write_pairs(tmp_path / f"{name}.json", pairs, {"model": "sface"})
        return create_study(src, tmp_path / name, conditions, per_condition, scale=scale,
                            draw_maps=False, catch=catch)
    return make


@pytest.fixture(scope="session")
def mapped_study(tmp_path_factory: pytest.TempPathFactory) -> CreatedStudy:
    """Four real LFW pairs and two catch trials with real occlusion help maps from sface (made
    once); four participants per condition (the browser tests take the last ones, the
    round-2 text test the third)."""
    root = tmp_path_factory.mktemp("mapped")
    src = write_pairs(root / "pairs.json", lfw_study_pairs(2), {"model": "sface"})
    return create_study(src, root / "study", ("none", "occlusion"), 4, options=COARSE, catch=2)
