"""Adding a method is one file: a toy method registered from a module outside the package shows
up in the CLI's choices, in `--method all`, in the report and in the faithfulness benchmark."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facexplain.methods import registry
from tests.conftest import lfw_image

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "facexplain"

TOY = '''"""Toy method: where face A is brighter than face B (one file, registered on import)."""
import torch

from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails
from facexplain.methods import MapSpec, MethodInfo, register_method


class Toy(Explainer):
    name = "toy"

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        d = (pair[0] - pair[1]).mean(dim=0) / 255.0
        delta = torch.stack([d, -d])
        with torch.no_grad():
            score = float(self.score_fn(pair[:1], pair[1:])[0])
        return ExplanationMaps("toy", {"delta": delta, "difference": delta.clamp(min=0)},
                               score, MethodDetails(note="a toy"))


register_method(MethodInfo(
    name="toy", title="Toy brightness difference", family="black-box",
    description="Brightness of A minus B.",
    maps=(MapSpec("delta", "signed", signed=True, vrange=None, show=False),
          MapSpec("difference", "where A is brighter")),
    build=lambda scorer, options: Toy(scorer),
))
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The toy module on the path, named in $FACEXPLAIN_PLUGINS; unregistered afterwards."""
    (tmp_path / "toy_method.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = {**os.environ, "FACEXPLAIN_PLUGINS": "toy_method",
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    yield env
    registry.unregister_method("toy")
    sys.modules.pop("toy_method", None)


@pytest.mark.long
def test_toy_method_in_cli_choices_all_and_report(plugin: dict[str, str], tmp_path: Path) -> None:
    helped = subprocess.run([str(CLI), "explain", "--help"], env=plugin, capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert helped.returncode == 0 and "toy" in helped.stdout
    listed = subprocess.run([str(CLI), "methods"], env=plugin, capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert "toy (black-box): Toy brightness difference" in listed.stdout
    out = tmp_path / "report"
    a, b = lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)
    # --method all, with settings that keep the slow methods short; xcos needs a trained head,
    # so this also exercises training it on first use where none exists.
    done = subprocess.run([str(CLI), "explain", str(a), str(b), "--method", "all", "--patch",
                           "56", "--stride", "56", "--out", str(out)], env=plugin,
                          capture_output=True, text=True, timeout=1200, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    html = (out / "report.html").read_text()
    assert "Toy brightness difference" in html and "toy_difference.png" in html
    assert (out / "toy_delta.npy").is_file()
    for name, info in registry.all_methods().items():  # every method in 'all' wrote its maps
        assert bool(list(out.glob(f"{name}_*.npy"))) == info.in_all, name
        if not info.in_all:  # the slow ones are named as left out
            assert name in done.stderr


def test_toy_method_in_faithfulness(plugin: dict[str, str], monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    from facexplain.benchmarks.faithfulness import (
        FaithfulnessConfig,
        ranked_methods,
        run_faithfulness,
    )

    importlib.import_module("toy_method")
    assert "toy" in ranked_methods()
    cfg = FaithfulnessConfig(n_pairs=2, methods=("toy",), fractions=(0.0, 0.5), progress=False,
                             resume=False)
    result = run_faithfulness(cfg)
    rows = {(r.method, r.kind) for r in result.rows}
    assert ("toy", "difference") in rows and ("toy", "similarity") in rows
