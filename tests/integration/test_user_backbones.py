"""User models: an exported real backbone registered from its ONNX file (and a torch module from
Python) gives the built-in's similarity and maps on a real LFW pair; bad files fail in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from facexplain import settings
from facexplain.api import explain_pair, verify
from facexplain.backbones.registry import get_spec, list_backbones, load_backbone
from facexplain.backbones.user import register_backbone
from facexplain.backbones.user_add import add_onnx
from facexplain.backbones.user_records import remove_backbone, user_spec
from facexplain.errors import InvalidArgument, UnknownBackbone, UserModelError
from facexplain.method_info import ExplainOptions
from facexplain.scoring import get_calibration, save_calibration
from tests.conftest import lfw_image

A, B = lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)
CHECK = [lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)]
FAST = ExplainOptions(patch=32, stride=32, fill="zero")
REAL_HOME = settings.current().home


def linked_home(home: Path) -> Path:
    """A model home linking the real model files (no records, caches or user models)."""
    home.mkdir(parents=True, exist_ok=True)
    for entry in REAL_HOME.iterdir():
        if entry.is_dir() and entry.name not in ("xcos", "cache", "_downloads", "records",
                                                 "user-backbones"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, home / entry.name)
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mp = pytest.MonkeyPatch()
    path = linked_home(tmp_path_factory.mktemp("user-home"))
    mp.setenv(settings.HOME_ENV, str(path))
    yield path
    mp.undo()


def export(name: str, path: Path) -> Path:
    """The built-in backbone written by torch.onnx.export, batch size dynamic."""
    model = load_backbone(name)
    size = get_spec(name).input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, size, size) * 255,), str(path), dynamo=False,
                          input_names=["input"], output_names=["embedding"],
                          dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}})
    return path


def borrow_calibration(user: str, builtin: str) -> None:
    """The built-in's calibration, stored for the user model's own weights (records are keyed
    by the weights: the user model would not read the built-in's record otherwise)."""
    from facexplain.backbones.user_records import read_records
    from facexplain.pipeline import FacePipeline

    weights = FacePipeline(user, forward_runtime=False).scorer.fingerprint()
    source = read_records().get(user, {}).get("sha256")  # an ONNX file's, for its runtime
    save_calibration(replace(get_calibration(builtin), backbone=user, command="test",
                             weights=weights, source_sha256=source))


def test_exported_backbone_registers_and_explains_like_the_builtin(home: Path,
                                                                   tmp_path: Path) -> None:
    onnx_file = export("mobileface", tmp_path / "mobileface.onnx")
    row, check = add_onnx("mf-user", onnx_file, check_images=CHECK)
    assert check is not None and check.runtime.startswith("onnxruntime")
    assert check.faces == 2 and check.min_cosine > 0.9999 and check.max_abs_diff < 1e-3
    stored = home / "user-backbones" / "mf-user.onnx"
    assert stored.is_file() and row["embedding_dim"] == 256
    assert json.loads((home / "user-backbones" / "mf-user.json").read_text())["sha256"] == \
        row["sha256"]
    assert "mf-user" in list_backbones() and get_spec("mf-user").user
    borrow_calibration("mf-user", "mobileface")

    ours, theirs = verify(A, B, backbone="mf-user"), verify(A, B, backbone="mobileface")
    assert ours.same and ours.similarity == pytest.approx(theirs.similarity, abs=1e-5)
    got = explain_pair(A, B, "occlusion,saliency", backbone="mf-user", options=FAST)
    ref = explain_pair(A, B, "occlusion,saliency", backbone="mobileface", options=FAST)
    for r_got, r_ref in zip(got.results, ref.results, strict=True):
        for m_got, m_ref in zip(r_got.maps, r_ref.maps, strict=True):
            scale = float(m_ref.values.abs().max()) or 1.0
            assert float((m_got.values - m_ref.values).abs().max()) < 1e-3 * scale, m_got.name

    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")  # a changed file is refused
    with pytest.raises(Exception, match="sha256"):
        load_backbone("mf-user")
    remove_backbone("mf-user")
    assert "mf-user" not in list_backbones()
    with pytest.raises(UnknownBackbone):
        get_spec("mf-user")


def test_int8_sface_registers_as_is_and_matches_opencv(home: Path) -> None:
    pytest.importorskip("cv2")
    int8 = REAL_HOME / "sface" / "face_recognition_sface_2021dec_int8bq.onnx"
    row, check = add_onnx("sface-int8", int8, feature_nodes=["conv_14_relu"],
                          check_images=CHECK)
    assert check is not None and check.runtime.startswith("opencv")  # onnxruntime refuses it
    assert check.min_cosine > 0.99999 and row["output"] == "fc1"
    borrow_calibration("sface-int8", "sface")
    got = explain_pair(A, B, "gradcam", backbone="sface-int8", options=FAST)  # a map method
    ref = explain_pair(A, B, "gradcam", backbone="sface", options=FAST)
    for name, values in ref.results[0].explanation.maps.items():
        scale = float(values.abs().max()) or 1.0
        diff = float((got.results[0].explanation.maps[name] - values).abs().max())
        assert diff < 1e-3 * scale, name
    remove_backbone("sface-int8")


class Wrapped(nn.Module):
    """A plain torch module (not a FaceModel), as a user would bring one."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.mark.long
def test_register_backbone_from_python_matches_the_builtin(home: Path) -> None:
    spec = register_backbone("sface-py", Wrapped(load_backbone("sface")),
                             user_spec(template="arcface-112", feature_nodes=["body"]))
    assert spec.embedding_dim == 128 and get_spec("sface-py").user
    borrow_calibration("sface-py", "sface")
    got = explain_pair(A, B, "occlusion", backbone="sface-py", options=FAST)
    ref = explain_pair(A, B, "occlusion", backbone="sface", options=FAST)
    assert got.verdict.similarity == pytest.approx(ref.verdict.similarity, abs=1e-6)
    diff = got.results[0].explanation.maps["delta"] - ref.results[0].explanation.maps["delta"]
    assert float(diff.abs().max()) < 1e-5
    remove_backbone("sface-py")
    assert "sface-py" not in list_backbones()


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, settings.HOME_ENV: str(home)}
    cli = Path(sys.executable).parent / "facexplain"
    return subprocess.run([str(cli), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)


def test_cli_add_list_remove_and_one_line_errors(home: Path, tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    for p in CHECK:
        shutil.copy2(p, faces / p.name)
    export("mobileface", tmp_path / "m.onnx")
    ok = _cli("backbones", "add", "mf-cli", "--onnx", str(tmp_path / "m.onnx"),
              "--check-images", str(faces), "--no-calibrate", home=home)
    assert ok.returncode == 0, ok.stderr
    assert "max abs diff" in ok.stdout and "registered 'mf-cli'" in ok.stdout
    assert "mf-cli" in list_backbones()  # the CLI's record, seen by this process

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 112, 112])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 112, 112])
    save(helper.make_model(helper.make_graph([helper.make_node("Hardmax", ["x"], ["y"])], "g",
                                             [x], [y])), str(tmp_path / "op.onnx"))
    for args, words in (
        (("add", "b1", "--onnx", str(bad)), "not a readable ONNX model"),
        (("add", "b2", "--onnx", str(tmp_path / "op.onnx")), "['Hardmax']"),
    ):
        res = _cli("backbones", *args, home=home)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 2 and len(errors) == 1 and words in errors[0], res.stderr
        assert "Traceback" not in res.stderr
    remove_backbone("mf-cli")
    assert "mf-cli" not in list_backbones()
    with pytest.raises(UserModelError):
        add_onnx("b3", bad)
    with pytest.raises(InvalidArgument, match="built in"):
        add_onnx("sface", bad)
    with pytest.raises(UnknownBackbone, match="no user backbone 'nope'"):
        remove_backbone("nope")
