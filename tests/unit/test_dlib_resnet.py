"""dlib-resnet structure on synthetic weights: named map shapes and TF.js weight decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain.backbones.base import EMBEDDING
from facexplain.backbones.dlib_resnet import BLOCKS, NODES, DlibResNet
from facexplain.backbones.registry import get_spec
from facexplain.errors import UnknownNode
from facexplain.tfjs_weights import read_tfjs_weights

EXPECTED = {
    "conv32": (32, 35, 35),
    "conv64": (64, 17, 17),
    "conv128": (128, 8, 8),
    "conv256": (256, 4, 4),
    "conv256_out": (256, 2, 2),
    EMBEDDING: (128,),
}


def _fake_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights with the manifest's names and shapes (no asset files needed)."""
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(prefix: str, k: int, cin: int, cout: int) -> None:
        shapes[f"{prefix}/conv/filters"] = (k, k, cin, cout)
        for suffix in ("conv/bias", "scale/weights", "scale/biases"):
            shapes[f"{prefix}/{suffix}"] = (cout,)

    conv("conv32_down", 7, 3, 32)
    cin = 32
    for name, _down in BLOCKS:
        cout = int(name.split("_")[0].removeprefix("conv"))
        conv(f"{name}/conv1", 3, cin, cout)
        conv(f"{name}/conv2", 3, cout, cout)
        cin = cout
    shapes["fc"] = (256, 128)
    return {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    return DlibResNet(_fake_weights()).eval()


def test_named_map_shapes(model: DlibResNet) -> None:
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        out = model.forward_nodes(x, NODES)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == EXPECTED
    assert out[EMBEDDING].shape[0] == 2


def test_registry_nodes_are_exposed() -> None:
    spec = get_spec("dlib-resnet")
    assert set(spec.feature_nodes) <= set(NODES)
    assert "conv128" in spec.feature_nodes  # the 8x8 map xCos uses
    assert spec.last_spatial_node == "conv256_out"


def test_partial_request_and_forward_agree(model: DlibResNet) -> None:
    x = torch.rand(1, 3, 150, 150) * 255
    with torch.no_grad():
        only = model.forward_nodes(x, ("conv64",))
        both = model.forward_nodes(x, ("conv64", EMBEDDING))
        emb = model(x)
    assert list(only) == ["conv64"]
    torch.testing.assert_close(only["conv64"], both["conv64"])
    torch.testing.assert_close(emb, both[EMBEDDING])


def test_unknown_node_rejected(model: DlibResNet) -> None:
    with pytest.raises(UnknownNode, match="'fc7'.*conv64"):
        model.forward_nodes(torch.zeros(1, 3, 150, 150), ("fc7",))


def test_read_tfjs_weights_decodes_uint8_and_float(tmp_path: Path) -> None:
    q = np.array([0, 1, 255, 7, 9, 200], dtype=np.uint8)
    f = np.array([[1.5, -2.0], [0.25, 3.0]], dtype="<f4")
    manifest = [{"paths": ["w.bin"], "weights": [
        {"name": "a", "shape": [2, 3], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "b", "shape": [2, 2], "dtype": "float32"},
    ]}]
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    (tmp_path / "w.bin").write_bytes(q.tobytes() + f.tobytes())
    w = read_tfjs_weights(tmp_path / "w.bin", tmp_path / "m.json")
    np.testing.assert_array_equal(w["a"], (q * 0.5 - 1.0).reshape(2, 3).astype(np.float32))
    np.testing.assert_array_equal(w["b"], f)
