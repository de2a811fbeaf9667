"""The 68-point landmark net's plumbing on synthetic weights: input resize, padding, output
decoding, missing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain import asset_catalog, assets
from facexplain.align import landmarks68_files
from facexplain.align.landmarks68 import (
    INPUT_SIZE,
    Landmarks68Net,
    _same_pad,
    landmarks68,
    load_landmarks68,
    resize_to_input,
)
from facexplain.backbones.builtin import dlib_resnet
from facexplain.errors import AssetMissing, InvalidArgument

WIDTHS = (32, 64, 128, 256)


def _weights(fc_bias: float) -> dict[str, np.ndarray]:
    """Random conv weights of face-api's shapes; a zero fc layer answering ``fc_bias``."""
    rng = np.random.default_rng(0)
    w: dict[str, np.ndarray] = {}
    cin = 3
    for b, cout in enumerate(WIDTHS):
        for i in range(4):
            p, c = f"dense{b}/conv{i}", cin if i == 0 else cout
            if b == 0 and i == 0:
                w[f"{p}/filters"] = rng.normal(0, 0.1, (3, 3, c, cout)).astype(np.float32)
            else:
                w[f"{p}/depthwise_filter"] = rng.normal(0, 0.1, (3, 3, c, 1)).astype(np.float32)
                w[f"{p}/pointwise_filter"] = rng.normal(0, 0.1, (1, 1, c, cout)).astype(np.float32)
            w[f"{p}/bias"] = np.zeros(cout, np.float32)
        cin = cout
    w["fc/weights"] = np.zeros((256, 136), np.float32)
    w["fc/bias"] = np.full(136, fc_bias, np.float32)
    return w


def test_outputs_are_fractions_of_the_crop_side() -> None:
    net = Landmarks68Net(_weights(0.25))
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    for size in (112, 150):
        marks = landmarks68(torch.rand(2, 3, size, size) * 255, net)
        assert marks.shape == (2, 68, 2)
        torch.testing.assert_close(marks, torch.full((2, 68, 2), 0.25 * size))
    assert net(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)).shape == (1, 136)


def test_resize_is_tfjs_legacy_bilinear() -> None:
    x = torch.arange(2 * 3 * 224 * 224, dtype=torch.float32).view(2, 3, 224, 224)
    torch.testing.assert_close(resize_to_input(x[..., :112, :112]), x[..., :112, :112])
    # No half-pixel centres: output pixel i reads input 2i exactly when halving.
    torch.testing.assert_close(resize_to_input(x), x[..., ::2, ::2])
    flat = resize_to_input(torch.full((1, 3, 150, 150), 7.0))
    torch.testing.assert_close(flat, torch.full((1, 3, 112, 112), 7.0))


def test_same_padding_puts_the_odd_pixel_bottom_right() -> None:
    padded = _same_pad(torch.ones(1, 1, 112, 112), stride=2)
    assert padded.shape == (1, 1, 113, 113)
    assert padded[0, 0, 0].sum() == 112 and padded[0, 0, -1].sum() == 0
    assert _same_pad(torch.ones(1, 1, 7, 7), stride=1).shape == (1, 1, 9, 9)


def test_rejects_crops_that_are_not_square_rgb() -> None:
    net = Landmarks68Net(_weights(0.5))
    for shape in ((1, 3, 112, 100), (1, 1, 112, 112), (3, 112, 112)):
        with pytest.raises(InvalidArgument, match="square RGB"):
            net.locate(torch.zeros(shape))


def test_missing_model_file_names_the_setup_command(tmp_path: Path) -> None:
    with pytest.raises(AssetMissing) as err:
        load_landmarks68(tmp_path)
    message = str(err.value)
    assert "\n" not in message and assets.SETUP_COMMAND in message
    assert landmarks68_files.WEIGHTS.name in message


def test_setup_fetches_both_files_from_the_one_face_api_pin() -> None:
    fetched = asset_catalog.fetched_files()
    assert set(landmarks68_files.FILES) <= set(fetched)
    assert dlib_resnet.WEIGHTS.package is landmarks68_files.FACE_API
