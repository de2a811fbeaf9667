"""Registration refuses what is not a face embedder, with one line: an output that is not one
vector per face, a scalar, NaN from a zero std, and a normalisation that makes different people
look alike (the built-in runtime files normalise inside; normalising again ruins them)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from facexplain.backbones.user_add import add_onnx
from facexplain.backbones.user_records import read_records
from facexplain.errors import UserModelError
from tests.integration.test_user_backbones import CHECK, REAL_HOME, home  # noqa: F401
from tests.integration.test_user_model_refusals import system_temp  # noqa: F401

pytestmark = pytest.mark.slow


def _export(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand(1, 3, 112, 112),), str(path), dynamo=False,
                          input_names=["input"], output_names=["out"],
                          dynamic_axes={"input": {0: "N"}, "out": {0: "N"}})
    return path


class Maps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Scalar(Maps):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(1, 2, 3)).unsqueeze(1)


@pytest.mark.parametrize(("module", "words"), [(Maps, "not one vector per face"),
                                               (Scalar, "1 values per face")])
def test_not_an_embedding_is_refused(home: Path, tmp_path: Path, module: type,  # noqa: F811
                                     words: str) -> None:
    torch.manual_seed(0)
    onnx_file = _export(module(), tmp_path / "m.onnx")
    with pytest.raises(UserModelError, match=words) as err:
        add_onnx("not-a-face-model", onnx_file, check_images=CHECK)
    assert "\n" not in str(err.value)
    assert "not-a-face-model" not in read_records()


@pytest.mark.long
def test_zero_std_and_a_second_normalisation_are_refused(home: Path) -> None:  # noqa: F811
    mobile = REAL_HOME / "runtime" / "mobileface-v1.onnx"
    sface = REAL_HOME / "runtime" / "sface-v1.onnx"
    if not (mobile.is_file() and sface.is_file()):
        pytest.skip("no exported runtime files in the model home; run make setup")
    with pytest.raises(UserModelError, match="NaN or infinite"):
        add_onnx("zero-std", mobile, std=(0.0,), check_images=CHECK, skip_check=True)
    with pytest.raises(UserModelError, match="separates people far worse") as err:
        add_onnx("twice-normalised", sface, mean=(127.5,), std=(128.0,), check_images=CHECK)
    assert "no flags" in str(err.value) and "\n" not in str(err.value)
    add_onnx("sface-as-is", sface, check_images=CHECK)  # the right setting registers
    assert "sface-as-is" in read_records() and "zero-std" not in read_records()


@pytest.mark.parametrize("builtin", ["sface", "dlib-resnet", "faceres", "mobileface"])
def test_normalisation_is_found_for_every_builtin_runtime_file(home: Path,  # noqa: F811
                                                               builtin: str) -> None:
    """The built-ins' runtime files normalise inside: registered without flags, the identity
    (RGB [0, 255]) must win, by a clear margin over the other conventions."""
    from facexplain.backbones.registry import get_spec

    runtime = REAL_HOME / "runtime" / f"{builtin}-v1.onnx"
    if not runtime.is_file():
        pytest.skip("no exported runtime file in the model home; run make setup")
    said: list[str] = []
    row, _ = add_onnx(f"found-{builtin}", runtime, template=get_spec(builtin).template,
                      check_images=CHECK, log=said.append)
    assert row["mean"] == [0.0, 0.0, 0.0] and row["std"] == [1.0, 1.0, 1.0] and not row["bgr"]
    scores = row["normalisation_check"]
    identity = max(scores["[0, 255] (no normalisation), RGB"],
                   scores["[0, 255] (no normalisation), BGR"])
    others = [d for name, d in scores.items() if not name.startswith("[0, 255]")]
    assert identity > 1.5 * max(others)  # the scale is not a close call
    assert any("separates people best" in m for m in said)


class FixedBatch(nn.Module):
    """A built-in exported as mobile converters do: batch fixed to 2, a hard-coded Reshape."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).reshape(2, 256)


def test_a_fixed_batch_graph_registers_and_scores_like_the_builtin(
        home: Path, tmp_path: Path, system_temp: Path) -> None:  # noqa: F811
    from facexplain.api import verify
    from facexplain.backbones.registry import load_backbone
    from facexplain.scoring import get_calibration, save_calibration
    from tests.integration.test_user_backbones import A, B

    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(FixedBatch(load_backbone("mobileface")).eval(),
                          (torch.rand(2, 3, 112, 112) * 255,), str(path), dynamo=False,
                          input_names=["input"], output_names=["embedding"])
    import onnx

    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    said: list[str] = []
    row, check = add_onnx("fixed-batch", path, check_images=CHECK, log=said.append)
    assert row["fixed_batch"] == 2 and any("fixed batch of 2" in m for m in said)
    assert list(system_temp.iterdir()) == []  # the rewritten graph's temporary copy is gone
    assert check is not None and check.min_cosine > 0.9999
    from dataclasses import replace

    from facexplain.pipeline import FacePipeline

    weights = FacePipeline("fixed-batch", forward_runtime=False).scorer.fingerprint()
    save_calibration(replace(get_calibration("mobileface"), backbone="fixed-batch",
                             weights=weights, source_sha256=row["sha256"], command="test"))
    ours, theirs = verify(A, B, backbone="fixed-batch"), verify(A, B, backbone="mobileface")
    assert ours.similarity == pytest.approx(theirs.similarity, abs=1e-4)


@pytest.mark.long
def test_registered_model_verifies_at_once_and_a_new_one_under_its_name_inherits_nothing(
        home: Path, tmp_path: Path) -> None:  # noqa: F811
    """The CLI registers with a provisional calibration (LFW folds 1-2: threshold, confidence
    and a bounded LR), verify works and says so; after remove, a different model under the same
    name has no calibration at all."""
    from facexplain.api import verify
    from facexplain.backbones.user_records import remove_backbone
    from facexplain.errors import InvalidArgument
    from tests.integration.test_user_backbones import A, B, _cli

    mobile = REAL_HOME / "runtime" / "mobileface-v1.onnx"
    sface = REAL_HOME / "runtime" / "sface-v1.onnx"
    if not (mobile.is_file() and sface.is_file()):
        pytest.skip("no exported runtime files in the model home; run make setup")
    added = _cli("backbones", "add", "reused-name", "--onnx", str(mobile), home=home)
    assert added.returncode == 0, added.stderr
    assert "provisional threshold" in added.stdout
    assert "provisional likelihood ratios" in added.stdout
    first = verify(A, B, backbone="reused-name")
    assert first.confidence is not None and first.population.startswith("provisional")
    # a provisional, bounded LR on the side of the verdict (A and B are one person's photos)
    assert first.lr_population == "lfw-provisional" and first.log10_lr is not None
    assert (first.log10_lr > 0) == first.same and first.verbal
    remove_backbone("reused-name")
    again = _cli("backbones", "add", "reused-name", "--onnx", str(sface), "--no-calibrate",
                 home=home)
    assert again.returncode == 0, again.stderr
    with pytest.raises(InvalidArgument, match="measured on other weights"):
        verify(A, B, backbone="reused-name")


def test_method_all_says_what_it_leaves_out_on_a_user_model(home: Path,  # noqa: F811
                                                            tmp_path: Path) -> None:
    from facexplain.api import explain_pair
    from facexplain.backbones.user import register_backbone
    from facexplain.backbones.user_records import remove_backbone, user_spec
    from facexplain.method_info import ExplainOptions
    from facexplain.report.html import write_explanation
    from tests.integration.test_user_backbones import A, B

    torch.manual_seed(0)
    tiny = nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 14 * 14, 32))
    register_backbone("tiny-user", tiny, user_spec("tiny-user"))
    from tests.integration.test_user_backbones import borrow_calibration

    borrow_calibration("tiny-user", "sface")
    try:
        result = explain_pair(A, B, methods="all", backbone="tiny-user",
                              options=ExplainOptions(patch=32, stride=32, ig_steps=4))
        skipped = dict(result.skipped)
        assert {"gradcam", "xcos", "parts"} <= set(skipped)  # no feature maps named
        assert "cannot run on tiny-user" in skipped["xcos"] and "slow" in skipped["rise"]
        assert {r.method.name for r in result.results}.isdisjoint(skipped)
        report = write_explanation(result, tmp_path / "r").read_text()
        assert "Methods not run" in report and "xcos (cannot run on tiny-user" in report
    finally:
        remove_backbone("tiny-user")
