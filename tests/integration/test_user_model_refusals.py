"""Registration refuses models that cannot tell people apart (a constant output, one that ignores
the pixels, a near-constant one, a random projection of the pixels), each in one line naming
the failed check and its number; ``--force`` registers one anyway and every verdict then warns.
Every refusal, at any step, leaves no record, no copied file and no temporary folder."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from facexplain.backbones.user_add import add_onnx
from facexplain.backbones.user_quality import MIN_AUC, MIN_SPREAD, MIN_VARIATION
from facexplain.backbones.user_records import read_records, remove_backbone
from facexplain.errors import UserModelError
from tests.integration.test_user_backbones import A, B, _cli, borrow_calibration, home  # noqa: F401

pytestmark = pytest.mark.slow


def export(module: nn.Module, path: Path, size: int = 112) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand(1, 3, size, size) * 255,), str(path),
                          dynamo=False, input_names=["input"], output_names=["out"],
                          dynamic_axes={"input": {0: "N"}, "out": {0: "N"}})
    return path


class Constant(nn.Module):
    """Reads the pixels and multiplies them by zero: the same vector for every face."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(128))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).unsqueeze(1) * 0 + self.bias


class IgnoresInput(Constant):
    """Only the batch size reaches the output (Shape -> ConstantOfShape in the graph)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x[:, :1, 0, 0]) * self.bias


class NearConstant(Constant):
    """A large constant plus a small input-dependent part: every cosine is above 0.9999."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * 112 * 112, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias + 0.1 * self.proj(x.flatten(1) / 255)


class RandomProjection(nn.Module):
    """Random linear features of the pixels: faces differ, people are not told apart."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * 112 * 112, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(1) / 127.5 - 1)


@pytest.fixture
def system_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp folder, empty and watched: registration must leave nothing there."""
    folder = tmp_path / "system-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def assert_nothing_left(home: Path, temp: Path, name: str) -> None:  # noqa: F811
    assert name not in read_records()
    stored = home / "user-backbones"
    assert not list(stored.glob(f"{name}.*")) if stored.is_dir() else True
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize(("module", "check", "words"), [
    (Constant, "variation", "does not depend on the input (it changes by 0 "),
    (IgnoresInput, "variation", "does not depend on the input (it changes by 0 "),
    (NearConstant, "spread", "(nearly) the same for every face (different people's median"),
    (RandomProjection, "auc", "does not tell people apart (AUC 0."),
])
def test_a_model_that_cannot_tell_people_apart_is_refused(
        home: Path, tmp_path: Path, system_temp: Path, module: type,  # noqa: F811
        check: str, words: str) -> None:
    torch.manual_seed(0)
    path = export(module(), tmp_path / f"{module.__name__}.onnx")
    said: list[str] = []
    with pytest.raises(UserModelError, match="refused by the model check") as err:
        add_onnx("useless", path, log=said.append)
    message = str(err.value)
    assert "\n" not in message and words in message and "--force" in message, message
    floor = {"variation": MIN_VARIATION, "spread": 1 - MIN_SPREAD, "auc": MIN_AUC}[check]
    assert f"{floor:g}" in message  # the floor it fell under is named
    assert_nothing_left(home, system_temp, "useless")


def test_forced_registration_warns_in_every_verdict(home: Path, tmp_path: Path,  # noqa: F811
                                                    system_temp: Path) -> None:
    """`backbones add --force` registers the random projection, records the failed check, and
    verify (text and --json, and the library) carries the warning with the check's number."""
    torch.manual_seed(0)
    path = export(RandomProjection(), tmp_path / "projection.onnx")
    added = _cli("backbones", "add", "forced", "--onnx", str(path), "--force", "--no-calibrate",
                 home=home)
    assert added.returncode == 0, added.stderr
    assert "model check FAILED: it does not tell people apart (AUC" in added.stderr
    row = read_records()["forced"]
    assert row["model_check"]["forced"] and row["model_check"]["auc"] < MIN_AUC
    borrow_calibration("forced", "sface")
    try:
        as_json = _cli("verify", str(A), str(B), "--backbone", "forced", "--json", home=home)
        assert as_json.returncode == 0, as_json.stderr
        verdict = json.loads(as_json.stdout)
        said = [w for w in verdict["warnings"] if "FAILED the model check" in w]
        assert len(said) == 1 and "--force" in said[0] and "AUC 0." in said[0], verdict
        text = _cli("verify", str(A), str(B), "--backbone", "forced", home=home)
        assert "warning: backbone 'forced' FAILED the model check" in text.stderr
        from facexplain.api import verify

        assert said[0] in verify(A, B, backbone="forced").warnings
        assert not any("model check" in w for w in verify(A, B, backbone="sface").warnings)
    finally:
        remove_backbone("forced")
    assert list(system_temp.iterdir()) == []


def test_a_model_that_passes_records_its_check(home: Path, tmp_path: Path,  # noqa: F811
                                               system_temp: Path) -> None:
    from tests.integration.test_user_backbones import export as export_builtin

    row, _ = add_onnx("passes", export_builtin("mobileface", tmp_path / "m.onnx"))
    try:
        check = row["model_check"]
        assert check["failed"] is None and not check["forced"] and check["auc"] > 0.95
        assert check["faces"] >= 50 and check["genuine"] >= 30 and check["spread"] > 0.5
        from facexplain.backbones.registry import get_spec

        assert get_spec("passes").warning == ""
    finally:
        remove_backbone("passes")
    assert list(system_temp.iterdir()) == []
