"""`study create` on real LFW photos with the real models: a warning when two conditions draw
the same picture (sface's PReLUs leave deconv and guided equal to the plain gradient; dlib's
ReLUs do not), a progress bar with an estimate, and the round-2 text of each condition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facexplain.benchmarks.lookalike import write_pairs
from facexplain.methods.registry import get_method
from facexplain.study.create import create_study, identical_conditions
from facexplain.study.store import open_study
from tests.integration.test_cli import run_cli
from tests.study.conftest import lfw_study_pairs

GRADIENTS = ("deconv", "saliency", "guided")


def make(tmp_path: Path, backbone: str, said: list[str]) -> Path:
    src = write_pairs(tmp_path / f"{backbone}.json", lfw_study_pairs(1)[:1], {"model": backbone})
    create_study(src, tmp_path / backbone, ("none", *GRADIENTS), 1, backbone=backbone, catch=0,
                 log=said.append, progress=True)
    return tmp_path / backbone


@pytest.mark.long
def test_identical_help_is_warned_on_sface_not_on_dlib(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    said: list[str] = []
    folder = make(tmp_path, "sface", said)
    assert said == ["warning: on sface, deconv, saliency and guided draw the same picture (first "
                    "pair compared): their participants would see identical help; --backbone "
                    "dlib-resnet (whose ReLUs make deconv and guided differ) avoids it"]
    err = capsys.readouterr().err
    assert "help maps: 100%" in err and "s/pair" in err  # the bar's time per pair
    pictures = {m: (folder / "maps" / m / "p0000.png").read_bytes() for m in GRADIENTS}
    assert len(set(pictures.values())) == 1  # what the warning is about: the very same PNG
    with open_study(folder) as store:
        readings = json.loads(store.meta["help_readings"])
    assert set(readings) == set(GRADIENTS)  # each condition's own text, from its map's reading
    for m in GRADIENTS:
        assert readings[m] == get_method(m).map_spec("magnitude").reading
    assert len(set(readings.values())) == 3
    said.clear()
    folder = make(tmp_path, "dlib-resnet", said)
    assert said == []
    pictures = {m: (folder / "maps" / m / "p0000.png").read_bytes() for m in GRADIENTS}
    assert len(set(pictures.values())) == 3


def test_identical_conditions_groups_equal_pictures() -> None:
    import torch

    a = torch.rand(2, 8, 8)
    got = identical_conditions({"x": a, "y": 3 * a, "z": a.flip(-1), "w": a + 1e-4})
    assert got == [("x", "y", "w")]  # scale does not change the picture; a flip does
    assert identical_conditions({"x": a, "z": 1 - a}) == []


def test_participants_are_said_to_be_per_condition(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["study", "create", "--help"], capsys)
    flat = " ".join(out.replace("│", " ").split())
    assert code == 0 and "Participants per condition (the study has this many times the " \
        "number of conditions)" in flat
    assert "--catch" in flat and "0: none" in flat
