"""A method with a setting of its own is one module: a plugin declaring `--gain` gets the flag
in `facexplain explain --help`, a field on the web form and in `/api/v1/openapi.json`, and the
value given on the command line reaches the method."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facexplain.methods import registry
from facexplain.web.app import create_app
from facexplain.web.jobs import Pipelines
from tests.conftest import lfw_image
from tests.web.conftest import wait_for_job, web_config

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "facexplain"

PLUGIN = '''"""Gainy: where face A is brighter than face B, times --gain (one file)."""
import torch

from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails
from facexplain.methods import MapSpec, MethodInfo, MethodOption, register_method

GAIN = MethodOption("gain", float, 1.0, "How much the gainy method amplifies its map.",
                    minimum=0.0, maximum=10.0, web=True, label="Gainy gain")


class Gainy(Explainer):
    name = "gainy"

    def __init__(self, scorer, gain: float) -> None:
        super().__init__(scorer)
        self.gain = gain

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        d = (pair[0] - pair[1]).mean(dim=0) / 255.0
        with torch.no_grad():
            score = float(self.score_fn(pair[:1], pair[1:])[0])
        return ExplanationMaps("gainy", {"delta": self.gain * torch.stack([d, -d]),
                                         "difference": torch.stack([d, -d]).clamp(min=0)},
                               score, MethodDetails(note=f"gain {self.gain}"))


register_method(MethodInfo(
    name="gainy", title="Gainy brightness difference", family="black-box",
    description="Brightness of A minus B, amplified.",
    maps=(MapSpec("delta", "signed", signed=True, vrange=None, show=False),
          MapSpec("difference", "where A is brighter")),
    build=lambda scorer, options: Gainy(scorer, options.get(GAIN)),
    options=(GAIN,),
))
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The plugin module on the path, named in $FACEXPLAIN_PLUGINS; unregistered afterwards."""
    (tmp_path / "gainy_method.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = {**os.environ, "FACEXPLAIN_PLUGINS": "gainy_method",
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    yield env
    registry.unregister_method("gainy")
    sys.modules.pop("gainy_method", None)


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env={**env, "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=600, cwd=REPO)


def test_plugin_option_in_cli_help_and_reaches_the_method(plugin: dict[str, str],
                                                          tmp_path: Path) -> None:
    helped = cli(["explain", "--help"], plugin)
    assert helped.returncode == 0, helped.stderr
    assert "--gain" in helped.stdout and "amplifies its map" in helped.stdout
    assert "--patch" in helped.stdout and "--samples" in helped.stdout  # the built-ins' too
    listed = cli(["methods"], plugin)
    assert "gainy (black-box): Gainy brightness difference; maps: delta, difference; " \
           "options: --gain" in listed.stdout
    a, b = lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)
    refused = cli(["explain", str(a), str(b), "--method", "gainy", "--gain", "11", "--out",
                   str(tmp_path / "no")], plugin)
    assert refused.returncode != 0
    assert refused.stderr.strip() == "error: --gain must be at most 10, got 11.0"
    assert not (tmp_path / "no").exists()
    out = tmp_path / "report"
    done = cli(["explain", str(a), str(b), "--method", "gainy", "--gain", "3.5", "--out",
                str(out)], plugin)
    assert done.returncode == 0, done.stderr[-2000:]
    delta, difference = np.load(out / "gainy_delta.npy"), np.load(out / "gainy_difference.npy")
    assert float(np.abs(difference).max()) > 0
    np.testing.assert_allclose(np.clip(delta, 0, None), 3.5 * difference, rtol=1e-5,
                               atol=1e-6)
    assert "gain 3.5" in (out / "report.html").read_text()


def test_plugin_option_on_the_web_form_and_in_the_api_schema(plugin: dict[str, str],
                                                             tmp_path: Path) -> None:
    importlib.import_module("gainy_method")  # this process discovered its methods already
    with TestClient(create_app(web_config(tmp_path / "work"), Pipelines())) as client:
        html = client.get("/").text
        assert 'name="gain"' in html and "Gainy gain" in html and 'max="10' in html
        assert 'name="patch"' in html and 'name="stride"' in html
        schema = client.get("/api/v1/openapi.json").json()
        body = next(s for n, s in schema["components"]["schemas"].items() if "explain" in n)
        assert body["properties"]["gain"]["type"] == "number"
        assert "amplifies its map" in body["properties"]["gain"]["description"]
        assert {"patch", "stride", "gain"} <= set(body["properties"])
        listed = {m["name"]: m for m in client.get("/api/v1/methods").json()}
        assert listed["gainy"]["options"] == [{"name": "gain", "type": "float", "default": 1.0,
                                               "help": "How much the gainy method amplifies "
                                               "its map.", "web": True}]
        refused = client.post("/api/v1/explain", data={"lfw_pair": "0", "methods": "gainy",
                                                       "gain": "11"})
        assert refused.status_code == 400
        assert refused.json()["detail"] == "--gain must be at most 10, got 11.0"
        queued = client.post("/api/v1/explain", data={"lfw_pair": "0", "methods": "gainy",
                                                      "gain": "2.5"})
        assert queued.status_code == 202, queued.text
        job = client.app.state.jobs.get(queued.json()["id"])  # type: ignore[attr-defined]
        assert job.request.to_json()["options"]["gain"] == 2.5  # stored with the job
        assert wait_for_job(client, job.id)["state"] == "done", job.error
    delta = np.load(job.out_dir / "gainy_delta.npy")
    difference = np.load(job.out_dir / "gainy_difference.npy")
    np.testing.assert_allclose(np.clip(delta, 0, None), 2.5 * difference, rtol=1e-5,
                               atol=1e-6)
