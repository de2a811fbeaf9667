"""SFace in torch against the shipped int8 model run by OpenCV dnn, on real LFW faces.

The float file is rebuilt from the int8 asset into a temporary cache, so this also checks the
set-up builder; OpenCV runs the original int8 file, which is the reference we must reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain import assets
from facexplain.backbones import registry
from facexplain.backbones.base import EMBEDDING
from facexplain.backbones.builtin import sface
from tests.conftest import lfw_image

cv2 = pytest.importorskip("cv2")
pytestmark = pytest.mark.slow

FACES = [("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2), ("Colin_Powell", 1), ("George_W_Bush", 3),
         ("Serena_Williams", 1), ("Tony_Blair", 2)]


@pytest.fixture(scope="module")
def sface_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = assets.home() / sface.INT8_NAME
    if not src.is_file():
        pytest.skip(f"SFace asset missing; run {assets.SETUP_COMMAND}")
    root = tmp_path_factory.mktemp("facexplain_home")
    (root / "sface").mkdir()
    (root / sface.INT8_NAME).symlink_to(src)
    sface.build_float_model(root)
    return root


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """A centre crop of each deep-funnelled LFW image at 112x112, RGB, NCHW float [0, 255]."""
    crops = []
    for name, index in FACES:
        bgr = cv2.imread(str(lfw_image(name, index)))
        assert bgr is not None, f"LFW image {name} {index} not found"
        crop = cv2.resize(bgr[65:185, 65:185], (112, 112), interpolation=cv2.INTER_AREA)
        crops.append(crop[:, :, ::-1].transpose(2, 0, 1))
    return np.ascontiguousarray(crops, dtype=np.float32)


@pytest.fixture(scope="module")
def model_out(sface_root: Path, faces: np.ndarray) -> dict[str, np.ndarray]:
    spec = registry.get_spec("sface")
    model = registry.load_backbone("sface", sface_root)
    with torch.no_grad():
        out = model.forward_nodes(torch.from_numpy(faces), [EMBEDDING, *spec.feature_nodes])
    return {k: v.numpy() for k, v in out.items()}


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_torch_matches_opencv_int8(sface_root: Path, faces: np.ndarray,
                                   model_out: dict[str, np.ndarray]) -> None:
    net = cv2.dnn.readNet(str(sface_root / sface.INT8_NAME))
    reference = []
    for blob in faces:
        net.setInput(blob[None], "data")
        reference.append(net.forward().reshape(-1))
    cos = _cosine(model_out[EMBEDDING], np.stack(reference))
    print(f"sface: embedding cosine vs OpenCV int8, min over {len(cos)} crops {cos.min():.7f}")
    assert cos.min() >= 0.999, cos


def test_torch_matches_onnxruntime_float(sface_root: Path, faces: np.ndarray,
                                         model_out: dict[str, np.ndarray]) -> None:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(sface_root / sface.FLOAT_NAME),
                                providers=["CPUExecutionProvider"])
    expected = sess.run(None, {"data": faces})[0]
    diff = float(np.abs(model_out[EMBEDDING] - expected).max())
    print(f"sface: embedding max abs diff vs onnxruntime (float file) {diff:.3g}")
    assert diff <= 1e-4


def test_embeddings_separate_identities(model_out: dict[str, np.ndarray]) -> None:
    e = model_out[EMBEDDING]
    same = _cosine(e[:1], e[1:2])[0]
    different = _cosine(np.repeat(e[:1], len(e) - 2, 0), e[2:])
    assert same > different.max(), (same, different)


def test_feature_maps_and_gradients(sface_root: Path, faces: np.ndarray,
                                    model_out: dict[str, np.ndarray]) -> None:
    spec = registry.get_spec("sface")
    assert model_out[EMBEDDING].shape == (len(FACES), spec.embedding_dim)
    assert model_out[spec.last_spatial_node].shape == (len(FACES), 1024, 7, 7)
    model = registry.load_backbone("sface", sface_root)
    x = torch.from_numpy(faces[:2]).requires_grad_(True)
    out = model.forward_nodes(x, [EMBEDDING, spec.last_spatial_node])
    fmap = out[spec.last_spatial_node]
    fmap.retain_grad()
    out[EMBEDDING][:, 0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert fmap.grad is not None and float(fmap.grad.abs().sum()) > 0
