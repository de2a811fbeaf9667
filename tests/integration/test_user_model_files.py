"""Registration reads what the ONNX file declares: a 160 px model runs at 160 px (a contradicting
--input-size is refused), external weights are read and stored inline (their files' sha256 in
the record), and odd shapes, sizes and storage failures end in one line with nothing left: no
record, no copied file, no temporary folder (also when the provisional calibration fails)."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from facexplain import assets
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.backbones.user_add import add_onnx
from facexplain.backbones.user_records import read_records, remove_backbone
from facexplain.errors import FacexplainError, InvalidArgument, UserModelError
from tests.integration.test_user_backbones import A, B, _cli, borrow_calibration, home  # noqa: F401
from tests.integration.test_user_model_refusals import assert_nothing_left, system_temp  # noqa: F401

pytestmark = pytest.mark.slow


def export(module: nn.Module, path: Path, size: int | tuple[int, int] = 112,
           free_size: bool = False) -> Path:
    h, w = (size, size) if isinstance(size, int) else size
    axes: dict[str, Any] = {"input": {0: "N", 2: "H", 3: "W"} if free_size else {0: "N"},
                            "out": {0: "N"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand(1, 3, h, w) * 255,), str(path),
                          dynamo=False, input_names=["input"], output_names=["out"],
                          dynamic_axes=axes)
    return path


def test_a_160_px_model_runs_at_160_px(home: Path, tmp_path: Path,  # noqa: F811
                                       system_temp: Path) -> None:  # noqa: F811
    """dlib's ResNet pools globally, so it runs at any size: exported with a fixed 160x160
    input it registers at 160 px (checked against onnxruntime, which takes nothing else) and
    verifies a real same-person pair like the built-in at 150 px."""
    path = export(load_backbone("dlib-resnet"), tmp_path / "dlib160.onnx", 160)
    with pytest.raises(InvalidArgument, match=r"--input-size 112 contradicts the model's "
                       r"declared input Nx3x160x160") as err:
        add_onnx("at-160", path, template="dlib-150", size=112)
    assert "\n" not in str(err.value)
    assert_nothing_left(home, system_temp, "at-160")
    said: list[str] = []
    row, check = add_onnx("at-160", path, template="dlib-150", log=said.append)
    try:
        assert row["size"] == 160 and get_spec("at-160").input_size == 160
        assert any("160x160 px, the dlib-150 template scaled" in m for m in said)
        assert check is not None and check.runtime.startswith("onnxruntime")
        assert check.min_cosine > 0.9999 and row["model_check"]["auc"] > 0.95
        borrow_calibration("at-160", "dlib-resnet")
        from facexplain.api import verify

        ours, builtin = verify(A, B, backbone="at-160"), verify(A, B, backbone="dlib-resnet")
        assert ours.same and abs(ours.similarity - builtin.similarity) < 0.03
    finally:
        remove_backbone("at-160")
    assert list(system_temp.iterdir()) == []


def _with_external_data(src: Path, folder: Path, location: str = "weights.bin") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "model.onnx"
    onnx.save(onnx.load(str(src)), str(out), save_as_external_data=True,
              all_tensors_to_one_file=True, location=location, size_threshold=0)
    return out


def test_external_weights_work_end_to_end(home: Path, tmp_path: Path,  # noqa: F811
                                          system_temp: Path) -> None:  # noqa: F811
    from tests.integration.test_user_backbones import export as export_builtin

    plain = export_builtin("mobileface", tmp_path / "plain.onnx")
    path = _with_external_data(plain, tmp_path / "external")
    data = path.parent / "weights.bin"
    assert data.stat().st_size > path.stat().st_size  # the weights really are outside
    row, check = add_onnx("external", path)
    try:
        assert row["external_data"] == [{"file": "weights.bin", "sha256": assets.sha256_of(data)}]
        assert check is not None and check.min_cosine > 0.9999
        shutil.rmtree(path.parent)  # the registered copy holds every weight itself
        stored = home / "user-backbones" / "external.onnx"
        from onnx.external_data_helper import _get_all_tensors, uses_external_data

        proto = onnx.load(str(stored), load_external_data=False)
        assert not any(uses_external_data(t) for t in _get_all_tensors(proto))
        assert assets.sha256_of(stored) == row["sha256"]
        borrow_calibration("external", "mobileface")
        from facexplain.api import verify

        ours, builtin = verify(A, B, backbone="external"), verify(A, B, backbone="mobileface")
        assert ours.similarity == pytest.approx(builtin.similarity, abs=1e-5)
    finally:
        remove_backbone("external")
    assert list(system_temp.iterdir()) == []

    missing = _with_external_data(plain, tmp_path / "missing")
    (missing.parent / "weights.bin").unlink()
    outside = _with_external_data(plain, tmp_path / "outside" / "in")
    proto = onnx.load(str(outside), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(proto, str(outside))
    shutil.move(outside.parent / "weights.bin", outside.parent.parent / "weights.bin")
    for bad in (missing, outside):
        with pytest.raises(UserModelError, match="not beside it") as err:
            add_onnx("external-bad", bad)
        assert "\n" not in str(err.value)
        assert_nothing_left(home, system_temp, "external-bad")


class Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 8, stride=8)


class RankZero(Conv):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean()


class RankOne(Conv):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten()


class Pooled(Conv):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3)).repeat(1, 4)


def _no_path(path: Path) -> Path:
    """An output that is a Constant: nothing connects the image to it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 112, 112])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])
    value = helper.make_tensor("v", TensorProto.FLOAT, [1, 128], [0.5] * 128)
    graph = helper.make_graph([helper.make_node("Constant", [], ["y"], value=value)], "g", [x],
                              [y])
    onnx.save(helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize(("make", "kwargs", "words"), [
    (lambda p: export(RankZero(), p), {}, "its output is () for 10 faces"),
    (lambda p: export(RankOne(), p), {}, "its output is (15680,) for 10 faces"),
    (_no_path, {}, "does not depend on its input"),
    (lambda p: export(Pooled(), p, free_size=True), {"size": 100000},
     "--input-size 100000 px is outside 32-1024 px"),
    (lambda p: export(Pooled(), p, free_size=True), {"size": 0}, "--input-size 0 px is outside"),
    (lambda p: export(Pooled(), p, 16), {}, "declared input size 16 px is outside 32-1024"),
    (lambda p: export(Pooled(), p, (112, 96)), {}, "Nx3x112x96: only square crops"),
    (lambda p: export(Pooled(), p, 160), {"size": 112}, "--input-size 112 contradicts"),
])
def test_odd_shapes_and_sizes_fail_in_one_line_and_leave_nothing(
        home: Path, tmp_path: Path, system_temp: Path, make: Any,  # noqa: F811
        kwargs: dict[str, Any], words: str) -> None:
    torch.manual_seed(0)
    path = make(tmp_path / "odd.onnx")
    with pytest.raises(FacexplainError) as err:
        add_onnx("odd", path, **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert_nothing_left(home, system_temp, "odd")


def test_cli_refusals_are_one_line(home: Path, tmp_path: Path) -> None:  # noqa: F811
    for args, words in (
        (("--onnx", str(export(RankZero(), tmp_path / "r0.onnx"))), "its output is ()"),
        (("--onnx", str(export(Pooled(), tmp_path / "free.onnx", free_size=True)),
          "--input-size", "100000"), "outside 32-1024 px"),
    ):
        res = _cli("backbones", "add", "odd-cli", *args, home=home)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 2 and len(errors) == 1 and words in errors[0], res.stderr
        assert "Traceback" not in res.stderr and "odd-cli" not in read_records()


def test_a_failure_when_storing_or_calibrating_leaves_nothing(
        home: Path, tmp_path: Path, system_temp: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.test_user_backbones import export as export_builtin

    path = export_builtin("mobileface", tmp_path / "m.onnx")

    def disk_full(src: Any, dst: Any) -> None:
        Path(dst).write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as mp:
        mp.setattr(shutil, "copyfile", disk_full)
        with pytest.raises(UserModelError, match="No space left on device; not registered"):
            add_onnx("stored-half", path)
    assert_nothing_left(home, system_temp, "stored-half")
    assert not list((home / "user-backbones").glob("*.part"))

    def interrupted(*_a: Any, **_k: Any) -> None:
        raise KeyboardInterrupt  # Ctrl-C during the provisional calibration

    from facexplain.benchmarks import lfw
    from facexplain.cli.app import main

    monkeypatch.setattr(lfw, "run_lfw_benchmark", interrupted)
    monkeypatch.setattr(sys, "argv", ["facexplain", "backbones", "add", "calibrating",
                                      "--onnx", str(path)])
    with pytest.raises(SystemExit) as code:
        main()
    assert code.value.code == 130 and "registered 'calibrating'" in capsys.readouterr().out
    assert_nothing_left(home, system_temp, "calibrating")
    assert not any(n.startswith("calibrating") for n in os.listdir(home / "user-backbones"))


def test_old_and_unchecked_records() -> None:
    """A record made before the model check existed gets no warning; one registered where no
    LFW photos could test it warns in every verdict."""
    from facexplain.backbones.user_records import model_warning

    assert model_warning({"name": "old"}) == ""
    assert "without the model check" in model_warning({"name": "x", "model_check": None})
    assert model_warning({"name": "x", "model_check": {"failed": None}}) == ""
