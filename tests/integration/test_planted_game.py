"""The game's runner on a tiny planted set of real LFW faces: played here and on Ray (one
actor), it gives the same records, resumes from its log, and scores what it should."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain.align.landmarks68 import landmarks68
from facexplain.batch.game import ray_player
from facexplain.benchmarks.planted import PlantedConfig, planted_path, run_planted, start_game
from facexplain.benchmarks.planted_pairs import PlantedPair, PlantedSet, transplant
from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow
METHODS = ("occlusion", "occlusion-per-face", "saliency")


def _tiny_set(pipe: FacePipeline) -> PlantedSet:
    genuine = pipe.pair(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)).array
    donor = pipe.align_path(lfw_image("Abdel_Madi_Shabneh", 1)).array
    pairs, faces, masks = [], [], []
    for face, region in ((1, "eyes"), (0, "mouth")):
        marks = landmarks68(torch.from_numpy(np.stack([genuine[face], donor]))).numpy()
        new, mask = transplant(genuine[face], donor, region, marks[0], marks[1])
        altered = genuine.copy()
        altered[face] = new
        sims = [pipe.scorer.similarity(torch.from_numpy(x.round())) for x in (genuine, altered)]
        pairs.append(PlantedPair("Aaron_Peirsol_0001|Aaron_Peirsol_0002", "altered", face,
                                 region, "Abdel_Madi_Shabneh/x.jpg", sims[0], sims[1]))
        faces.append(np.clip(altered.round(), 0, 255).astype(np.uint8))
        masks.append(mask)
    pairs.append(replace(pairs[0], kind="untouched", face=-1, similarity=pairs[0].original))
    faces.append(np.clip(genuine.round(), 0, 255).astype(np.uint8))
    masks.append(masks[0])
    return PlantedSet(pairs, np.stack(faces), np.stack(masks))


@pytest.mark.long
def test_game_here_and_on_ray_agree_and_resume(tmp_path: Path) -> None:
    pipe = FacePipeline("sface", forward_runtime=False)
    tiny = _tiny_set(pipe)
    docs = []
    for name in ("here", "ray"):
        cfg = PlantedConfig(backbone="sface", methods=METHODS, n_altered=2, n_controls=1,
                            n_impostor=1, n_boot=50, cache_dir=tmp_path / name, progress=False)
        tiny.save(planted_path(cfg, pipe))
        docs.append(run_planted(cfg) if name == "here" else run_planted(cfg, ray_player(1)))
        assert start_game(cfg).todo() == []  # all in the log: a second run resumes with nothing
        other = start_game(replace(cfg, methods=("saliency",)))  # another method list, same set
        assert len(other.todo()) == 4 and start_game(cfg).todo() == []  # neither log lost
    here, ray = docs
    assert here["pairs"] == {"altered": 2, "same-person": 0, "untouched": 1, "impostor": 1}
    assert here["components"] == {}  # none of these methods gives component findings
    for row in ("occlusion", "occlusion-per-face", "saliency", "occlusion-shapley"):
        for key in ("share", "pointing", "auc"):
            assert here["rows"][row]["altered"][key]["mean"] == pytest.approx(
                ray["rows"][row]["altered"][key]["mean"], abs=1e-4)
    assert "which" in here["rows"]["occlusion-per-face"]["altered"]
    assert "occlusion" not in here["per_face_rows"]  # one map for both faces decides nothing
