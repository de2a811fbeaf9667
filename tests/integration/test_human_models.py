"""faceres / mobileface in torch vs the original TF.js runtime (tfjs CPU, node) on LFW faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain import assets
from facexplain.backbones.builtin.faceres import EMBEDDING_NODE as FACERES_EMBEDDING
from facexplain.backbones.builtin.mobileface import EMBEDDING_NODE as MOBILEFACE_EMBEDDING
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.backbones.tfjs_graph import TFJSGraphModule
from tests.conftest import centre_chips
from tests.reference_runtime import reference_available, run_node

pytestmark = pytest.mark.slow

FACES = (("Aaron_Peirsol", 1), ("George_W_Bush", 1), ("Serena_Williams", 1), ("Colin_Powell", 1))
CROP = 120  # LFW deep-funneled faces sit in the middle of the 250x250 image
NO_REFERENCE = "node or tools/reference/node_modules missing (cd tools/reference && npm ci)"
EMBEDDING_NODES = {"faceres": FACERES_EMBEDDING, "mobileface": MOBILEFACE_EMBEDDING}
SPATIAL_SHAPES = {"faceres": [(1024, 7, 7)], "mobileface": [(64, 7, 7), (128, 4, 4)]}


def _chips(size: int) -> np.ndarray:
    """Centre crops resized to ``size``, float32 NHWC RGB in [0, 255] (stand-in for alignment)."""
    return centre_chips(FACES, size, CROP)


def _model_json(name: str) -> Path:
    return assets.asset_path(get_spec(name).load_files()[0])


@pytest.mark.parametrize("name", ["faceres", "mobileface"])
def test_embedding_and_maps_match_tfjs(name: str, lfw_dir: Path) -> None:
    if not reference_available():
        pytest.skip(NO_REFERENCE)
    spec = get_spec(name)
    chips = _chips(spec.input_size)
    model = load_backbone(name)
    with torch.no_grad():
        out = model.forward_nodes(torch.from_numpy(chips).permute(0, 3, 1, 2),
                                  ["embedding", *spec.feature_nodes])
    ref = run_node("run_tfjs_graph.mjs", chips, [str(_model_json(name)), EMBEDDING_NODES[name]])
    emb = out["embedding"].numpy()
    assert emb.shape == ref.shape == (len(FACES), spec.embedding_dim)
    diff = float(np.abs(emb - ref).max())
    scale = float(np.abs(ref).max())
    print(f"{name}: embedding max abs diff vs tfjs {diff:.3g} (max |value| {scale:.3g})")
    assert diff <= 1e-4
    for node, shape in zip(spec.feature_nodes, SPATIAL_SHAPES[name], strict=True):
        ref_map = run_node("run_tfjs_graph.mjs", chips, [str(_model_json(name)), node])
        ours = out[node].numpy()
        assert ours.shape[1:] == shape
        map_diff = float(np.abs(ours.transpose(0, 2, 3, 1) - ref_map).max())
        print(f"{name}: {node} max abs diff vs tfjs {map_diff:.3g}")
        assert map_diff <= 1e-4


@pytest.mark.parametrize("name", ["faceres", "mobileface"])
def test_fast_path_equals_op_by_op_execution(name: str, lfw_dir: Path) -> None:
    """Folding and channels_last change speed, not results; inner nodes stay reachable."""
    spec = get_spec(name)
    x = torch.from_numpy(_chips(spec.input_size)[:2]).permute(0, 3, 1, 2)
    fast = TFJSGraphModule.from_file(_model_json(name))
    plain = TFJSGraphModule.from_file(_model_json(name), fuse=False, channels_last=False)
    inner = "conv_dw_5/depthwise" if name == "faceres" else "Minimum_3"
    nodes = [EMBEDDING_NODES[name], *spec.feature_nodes, inner]
    with torch.no_grad():
        a, b = fast.forward_nodes(x, nodes), plain.forward_nodes(x, nodes)
    for node in nodes:
        assert a[node].shape == b[node].shape
        assert float((a[node] - b[node]).abs().max()) <= 1e-4, node


def test_embeddings_are_differentiable_and_sane(lfw_dir: Path) -> None:
    for name in ("faceres", "mobileface"):
        spec = get_spec(name)
        model = load_backbone(name)
        x = torch.from_numpy(_chips(spec.input_size)).permute(0, 3, 1, 2).requires_grad_()
        out = model.forward_nodes(x, ["embedding", spec.last_spatial_node])
        out[spec.last_spatial_node].sum().backward()
        assert x.grad is not None and float(x.grad.abs().sum()) > 0
        emb = out["embedding"].detach()
        assert torch.isfinite(emb).all()
        cos = torch.nn.functional.normalize(emb, dim=1) @ torch.nn.functional.normalize(emb).T
        assert float(cos[0, 1:].max()) < 0.99  # different people do not collapse to one vector
    with pytest.raises(ValueError, match="112"):
        load_backbone("mobileface")(torch.zeros(1, 3, 100, 100))
