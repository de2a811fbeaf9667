"""dlib-resnet port vs the original face-api runtime (tfjs CPU) on real LFW faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facexplain.backbones.registry import load_backbone
from tests.conftest import lfw_image
from tests.reference_runtime import reference_available, run_node

pytestmark = pytest.mark.slow

# Two people twice each (for a same/different sanity check) plus a few others.
FACES = (
    ("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2), ("George_W_Bush", 1), ("George_W_Bush", 2),
    ("Serena_Williams", 1), ("Colin_Powell", 1), ("Tony_Blair", 1), ("Gloria_Macapagal_Arroyo", 1),
)
CROP = 120  # LFW deep-funneled faces sit in the middle of the 250x250 image


def _chips() -> np.ndarray:
    """Centre crops resized to 150x150, float32 NHWC RGB in [0, 255] (a stand-in for alignment)."""
    out = []
    for name, idx in FACES:
        with Image.open(lfw_image(name, idx)) as im:
            w, h = im.size
            box = ((w - CROP) // 2, (h - CROP) // 2, (w + CROP) // 2, (h + CROP) // 2)
            chip = im.convert("RGB").crop(box).resize((150, 150), Image.Resampling.BILINEAR)
        out.append(np.asarray(chip, dtype=np.float32))
    return np.stack(out)


@pytest.fixture(scope="module")
def chips(lfw_dir: object) -> np.ndarray:
    return _chips()


@pytest.fixture(scope="module")
def torch_embeddings(chips: np.ndarray) -> np.ndarray:
    model = load_backbone("dlib-resnet")
    with torch.no_grad():
        return model(torch.from_numpy(chips).permute(0, 3, 1, 2)).numpy()


NO_REFERENCE = "node or tools/reference/node_modules missing (cd tools/reference && npm ci)"


@pytest.mark.skipif(not reference_available(), reason=NO_REFERENCE)
def test_matches_face_api(chips: np.ndarray, torch_embeddings: np.ndarray) -> None:
    # divisor=256: the script rescales the pixels so face-api's /255 equals dlib's /256.
    ref = run_node("run_face_api.mjs", chips, ["divisor=256"])
    assert ref.shape == torch_embeddings.shape == (len(FACES), 128)
    diff = float(np.abs(ref - torch_embeddings).max())
    print(f"dlib-resnet: embedding max abs diff vs face-api {diff:.3g}")
    assert diff <= 1e-4, f"max abs diff vs face-api {diff:.3g}"


def test_same_person_closer(torch_embeddings: np.ndarray) -> None:
    e = torch_embeddings
    dist = np.linalg.norm(e[:, None] - e[None], axis=-1)
    # dlib's rule of thumb: same person below 0.6 (Euclidean, unnormalised descriptors).
    assert dist[0, 1] < 0.6 and dist[2, 3] < 0.6
    assert dist[0, 2:].min() > max(dist[0, 1], dist[2, 3])
