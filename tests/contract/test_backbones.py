"""Every registered backbone is an ordinary torch module with named maps, on real LFW faces.

One template over ``registry.SPECS`` (kornia's one-test-per-op idea): weights are frozen
parameters that ``state_dict`` and re-initialisation see, ``node_names`` lists what
``forward_nodes`` can produce, an unknown node is ``UnknownNode``, and forward is pure,
deterministic and equal to its stage chain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.backbones.registry import SPECS, get_spec, load_backbone
from facexplain.errors import AssetMissing, UnknownNode
from tests.conftest import centre_chips

pytestmark = pytest.mark.slow

NAMES = list(SPECS)
# A genuine pair and a third person; the deep-funnelled face sits in the 250x250 image centre.
FACES = (("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2), ("George_W_Bush", 1))
CROP = 120


def _faces(size: int) -> torch.Tensor:
    """Centre crops resized to ``size`` (the tests' stand-in for alignment), NCHW RGB [0, 255]."""
    return torch.from_numpy(centre_chips(FACES, size, CROP)).permute(0, 3, 1, 2).contiguous()


def _load(name: str) -> FaceModel:
    try:
        return load_backbone(name)
    except AssetMissing as exc:
        pytest.skip(str(exc))


def _similarity(model: FaceModel, faces: torch.Tensor) -> float:
    with torch.no_grad():
        e = model(faces[:2])
    return float(F.cosine_similarity(e[:1], e[1:]))


@pytest.fixture(scope="module", params=NAMES)
def case(request: pytest.FixtureRequest, lfw_dir: Path) -> tuple[str, FaceModel, torch.Tensor]:
    name = request.param
    return name, _load(name), _faces(get_spec(name).input_size)


def test_weights_are_frozen_parameters(case: tuple[str, FaceModel, torch.Tensor]) -> None:
    _, model, _ = case
    params = list(model.parameters())
    assert params, "no parameters: weights kept as buffers are invisible to torch code"
    assert sum(p.numel() for p in params) > 100_000
    assert not any(p.requires_grad for p in params)
    assert set(model.state_dict()) >= {n for n, _ in model.named_parameters()}


def test_state_dict_round_trips_into_a_fresh_model(
        case: tuple[str, FaceModel, torch.Tensor]) -> None:
    name, model, faces = case
    fresh = _load(name)
    with torch.no_grad():
        expected = model(faces)
        fresh(faces)  # compile/cache anything lazy from the loaded weights first
        for p in fresh.parameters():
            p.mul_(0.5)
        assert not torch.equal(fresh(faces), expected)  # a changed weight is seen...
        fresh.load_state_dict(model.state_dict())
        got = fresh(faces)
    assert torch.equal(got, expected)  # ...and the round trip gives identical embeddings


def test_reinitialised_parameters_change_the_similarity(
        case: tuple[str, FaceModel, torch.Tensor]) -> None:
    name, model, faces = case
    before = _similarity(model, faces)
    scrambled = _load(name)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in scrambled.parameters():
            torch.nn.init.normal_(p, std=0.05)
    after = _similarity(scrambled, faces)
    assert np.isfinite(after)
    assert abs(after - before) > 1e-3, (before, after)


def test_node_names_list_the_spec_nodes_and_each_can_be_produced(
        case: tuple[str, FaceModel, torch.Tensor]) -> None:
    name, model, faces = case
    spec = get_spec(name)
    names = model.node_names()
    assert names[0] == EMBEDDING
    assert set(spec.feature_nodes) <= set(names)
    assert len(set(names)) == len(names)
    with torch.no_grad():
        out = model.forward_nodes(faces[:1], names)
    assert list(out) == list(names)
    assert all(isinstance(t, torch.Tensor) for t in out.values())
    assert out[EMBEDDING].shape == (1, spec.embedding_dim)
    for node in spec.feature_nodes:
        assert out[node].dim() == 4 and out[node].shape[0] == 1


def test_unknown_node_is_one_clear_error(case: tuple[str, FaceModel, torch.Tensor]) -> None:
    _, model, faces = case
    with pytest.raises(UnknownNode) as info:
        model.forward_nodes(faces[:1], (EMBEDDING, "no_such_node"))
    message = str(info.value)
    assert "no_such_node" in message and "\n" not in message
    assert any(n in message for n in model.node_names())


def test_forward_is_pure_and_deterministic(case: tuple[str, FaceModel, torch.Tensor]) -> None:
    name, model, faces = case
    x = faces.clone()
    nodes = (EMBEDDING, *get_spec(name).feature_nodes)
    with torch.no_grad():
        first = model.forward_nodes(x, nodes)
        second = model.forward_nodes(x, nodes)
    assert torch.equal(x, faces)
    for node in nodes:
        assert torch.equal(first[node], second[node]), node


def test_stage_chain_equals_forward(case: tuple[str, FaceModel, torch.Tensor]) -> None:
    _, model, faces = case
    with torch.no_grad():
        expected = model(faces)
        out = faces
        for stage in model.stages():
            out = stage(out)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_gradients_reach_the_input_not_the_frozen_weights(
        case: tuple[str, FaceModel, torch.Tensor]) -> None:
    name, model, faces = case
    x = faces[:2].clone().requires_grad_()
    out = model.forward_nodes(x, (EMBEDDING, get_spec(name).last_spatial_node))
    F.cosine_similarity(out[EMBEDDING][:1], out[EMBEDDING][1:]).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.parameters())


def test_unfrozen_weights_receive_gradients(case: tuple[str, FaceModel, torch.Tensor]) -> None:
    name, _, faces = case
    model = _load(name).requires_grad_(True)
    F.cosine_similarity(*model(faces[:2]).split(1)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert sum(g is not None and float(g.abs().sum()) > 0 for g in grads) > len(grads) // 2


def test_forward_only_runtime_equals_the_torch_module_on_real_faces(
        case: tuple[str, FaceModel, torch.Tensor]) -> None:
    """The set-up export (onnxruntime) gives the module's embeddings: the module stays the truth."""
    from facexplain import assets
    from facexplain.backbones.runtime import load_runtime

    name, model, faces = case
    runtime = load_runtime(name, assets.home(), threads=1)
    if runtime is None:
        pytest.skip(f"no forward-only runtime for {name}; run make setup")
    with torch.no_grad():
        expected = model(faces).numpy()
    got = runtime(faces.numpy())
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() > 0.999999
