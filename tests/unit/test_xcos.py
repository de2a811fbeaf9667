"""xCos head, losses and training loop on tiny synthetic data (no model files needed)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facexplain.errors import AssetMissing, InvalidArgument
from facexplain.heads.xcos import (
    XCosHead,
    XCosHeadConfig,
    cell_cosine,
    checkpoint_path,
    load_head,
    pearson_attention,
    save_head,
    uniform_attention,
)
from facexplain.losses.margins import MarginSoftmax, margin_logits
from facexplain.losses.xcos import xcos_loss
from facexplain.train.xcos import train_head
from facexplain.train.xcos_data import PairSampler, TrainingData, XCosTrainConfig

CFG = XCosHeadConfig(in_channels=8, height=4, width=3, grid_channels=6, reduced_channels=4)


def test_cell_cosine_is_exactly_the_per_cell_cosine() -> None:
    g = torch.Generator().manual_seed(0)
    fa, fb = torch.randn(3, 5, 4, 3, generator=g), torch.randn(3, 5, 4, 3, generator=g)
    s = cell_cosine(fa, fb)
    assert s.shape == (3, 4, 3)
    for n in range(3):
        for i in range(4):
            for j in range(3):
                a, b = fa[n, :, i, j], fb[n, :, i, j]
                expected = float(a @ b) / (float(a.norm()) * float(b.norm()))
                assert math.isclose(float(s[n, i, j]), expected, rel_tol=1e-5)
    with pytest.raises(InvalidArgument):
        cell_cosine(fa, fb[:, :, :2])


@pytest.mark.parametrize("kind", ["U", "P", "L"])
def test_attention_sums_to_one_and_score_is_inner_product(kind: str) -> None:
    torch.manual_seed(0)
    head = XCosHead(CFG).eval()
    head.set_pearson(torch.softmax(torch.randn(4, 3).flatten(), 0).reshape(4, 3))
    xa, xb = torch.randn(5, 8, 4, 3), torch.randn(5, 8, 4, 3)
    with torch.no_grad():
        out = head(xa, xb, kind)
    assert out.attention.shape == (5, 4, 3)
    assert torch.allclose(out.attention.sum(dim=(1, 2)), torch.ones(5), atol=1e-6)
    assert (out.attention >= 0).all()
    assert torch.equal(out.score, (out.similarity * out.attention).sum(dim=(1, 2)))
    assert torch.allclose(out.similarity, cell_cosine(head.features(xa), head.features(xb)))


def test_learned_attention_is_symmetric_in_the_pair() -> None:
    torch.manual_seed(1)
    head = XCosHead(CFG).eval()
    torch.nn.init.normal_(head.attention.fuse2.weight)
    xa, xb = torch.randn(2, 8, 4, 3), torch.randn(2, 8, 4, 3)
    with torch.no_grad():
        ab, ba = head(xa, xb), head(xb, xa)
    assert torch.allclose(ab.score, ba.score, atol=1e-6)


def test_uniform_attention() -> None:
    u = uniform_attention(7, 7)
    assert torch.allclose(u.sum(), torch.tensor(1.0)) and torch.allclose(u, u[0, 0])


def test_pearson_attention_recovers_planted_correlation() -> None:
    g = torch.Generator().manual_seed(0)
    n = 4000
    teacher = torch.rand(n, generator=g) * 2 - 1
    cells = torch.randn(n, 5, 5, generator=g) * 0.3
    cells[:, 1, 3] = teacher + 0.1 * torch.randn(n, generator=g)  # strongly tied
    cells[:, 4, 0] = teacher + 1.0 * torch.randn(n, generator=g)  # weakly tied
    cells[:, 0, 0] = -teacher  # anti-correlated: no weight
    p = pearson_attention(cells, teacher)
    assert torch.allclose(p.sum(), torch.tensor(1.0), atol=1e-6)
    assert int(p.argmax()) == 1 * 5 + 3
    assert p[1, 3] > p[4, 0] > 5 * p[2, 2]
    assert p[0, 0] == 0
    # no positive correlation anywhere: falls back to uniform
    assert torch.allclose(pearson_attention(-cells[:, :1, :1].expand(-1, 2, 2), teacher),
                          uniform_attention(2, 2))


def test_margin_logits_penalise_only_the_target() -> None:
    cos = torch.tensor([[0.5, 0.2, -0.1], [0.1, 0.9, 0.3]])
    labels = torch.tensor([0, 1])
    plain = margin_logits(cos, labels, "cosface", 0.0, 1.0)
    assert torch.allclose(plain, cos)
    cf = margin_logits(cos, labels, "cosface", 0.35, 30.0)
    assert torch.allclose(cf[0, 0], torch.tensor(30 * 0.15)) and cf[0, 1] == 30 * cos[0, 1]
    af = margin_logits(cos, labels, "arcface", 0.5, 1.0)
    assert torch.allclose(af[1, 1], torch.cos(torch.acos(torch.tensor(0.9)) + 0.5))
    assert torch.allclose(af[1, [0, 2]], cos[1, [0, 2]])
    with pytest.raises(InvalidArgument):
        margin_logits(cos, labels, "sphereface")


def test_margin_softmax_and_xcos_loss() -> None:
    torch.manual_seed(0)
    loss = MarginSoftmax(4, 3, "arcface")
    value = loss(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert value.ndim == 0 and value > 0
    parts = xcos_loss(torch.tensor([0.5, 0.1]), torch.tensor([0.3, 0.1]), value, 0.5)
    assert torch.allclose(parts.cos, torch.tensor(0.02))
    assert torch.allclose(parts.total, parts.cos + 0.5 * value)


def _synthetic(n_ids: int = 12, per_id: int = 4) -> TrainingData:
    """Faces whose maps carry an identity code in a few cells; the teacher sees identity too."""
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(n_ids, 8, generator=g)
    ids = np.repeat(np.arange(n_ids), per_id)
    maps = torch.randn(len(ids), 8, 4, 3, generator=g) * 0.5
    maps[:, :, 1:3, 1] += codes[ids][:, :, None]
    teacher = F.normalize(codes[ids] + 0.2 * torch.randn(len(ids), 8, generator=g), dim=1)
    return TrainingData(maps.half(), teacher, ids)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny convs only lose time to thread hand-offs (and the machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_tiny_training_run_decreases_the_loss() -> None:
    data = _synthetic()
    cfg = XCosTrainConfig(epochs=10, pairs_per_epoch=1024, batch_images=24, batch_pairs=64,
                          pearson_pairs=500,
                          grid_channels=6, reduced_channels=4, lr=3e-3)
    result = train_head(data, np.arange(len(data.identities)), cfg, CFG, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["cos"] < 0.5 * first["cos"]
    assert last["loss"] < first["loss"]
    assert torch.allclose(result.head.get_buffer("pearson").sum(), torch.tensor(1.0))
    # the planted cells are where the teacher's similarity lives
    p = result.head.get_buffer("pearson")
    assert p[1:3, 1].sum() > p.sum() * 2 / 12


def test_pair_sampler_genuine_and_impostor() -> None:
    ids = np.array([0, 0, 1, 1, 1, 2, 3])
    sampler = PairSampler(ids, np.arange(7), np.random.default_rng(0))
    a, b = sampler.sample(200, 0.5)
    assert (a != b).all()
    assert (ids[a[:100]] == ids[b[:100]]).all() and (ids[a[100:]] != ids[b[100:]]).all()
    sub = PairSampler(ids, np.array([2, 3, 5, 6]), np.random.default_rng(0))
    a, b = sub.sample(50)
    assert set(a) | set(b) <= {2, 3, 5, 6}


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = XCosHead(CFG).eval()
    head.set_pearson(torch.full((4, 3), 1 / 12))
    path = save_head(head, checkpoint_path("tiny", 3, tmp_path), {"fold": 3})
    assert path == tmp_path / "xcos" / "tiny" / "fold3.safetensors"
    assert path.with_suffix(".json").is_file()
    loaded, meta = load_head(path)
    assert meta["fold"] == 3 and loaded.config == head.config
    xa, xb = torch.randn(2, 8, 4, 3), torch.randn(2, 8, 4, 3)
    with torch.no_grad():
        assert torch.equal(loaded(xa, xb).score, head(xa, xb).score)
    with pytest.raises(AssetMissing):
        load_head(tmp_path / "missing.safetensors")


def test_altered_or_unrecorded_checkpoint_is_refused(tmp_path: Path) -> None:
    from facexplain.errors import AssetCorrupt
    from facexplain.heads.store import digest_file

    path = save_head(XCosHead(CFG), checkpoint_path("tiny", None, tmp_path))
    data = bytearray(path.read_bytes())
    data[-16:] = bytes(b ^ 0xFF for b in data[-16:])  # 16 bytes of the weights flipped
    path.write_bytes(bytes(data))
    with pytest.raises(AssetCorrupt, match="sha256 mismatch"):
        load_head(path)
    digest_file(path).unlink()
    with pytest.raises(AssetCorrupt, match="no recorded sha256"):
        load_head(path)


@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_split_attention_equals_conv_on_concatenation(padding: str) -> None:
    torch.manual_seed(2)
    head = XCosHead(dataclasses.replace(CFG, attention_padding=padding)).eval()
    net = head.attention
    torch.nn.init.normal_(net.fuse2.weight)  # the head starts at L = U; make L non-trivial
    fa, fb = torch.randn(3, 6, 4, 3), torch.randn(3, 6, 4, 3)
    mode = "constant" if padding == "zeros" else padding

    def concat_logits(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fused = F.pad(torch.cat([net.reduce(x), net.reduce(y)], dim=1), (1, 1, 1, 1), mode=mode)
        return net.fuse2(F.relu(F.conv2d(fused, net.fuse1.weight, net.fuse1.bias)))[:, 0]

    with torch.no_grad():
        expected = (concat_logits(fa, fb) + concat_logits(fb, fa)) / 2
        assert torch.allclose(net.logits(fa, fb), expected, atol=1e-5)
        feats = torch.cat([fa, fb])
        a, b = torch.tensor([0, 1, 2, 4]), torch.tensor([3, 4, 5, 0])
        for kind in ("U", "P", "L"):
            indexed = head.compare_indexed(feats, a, b, kind)
            direct = head.compare(feats[a], feats[b], kind)
            assert torch.allclose(indexed.score, direct.score, atol=1e-6)


def test_batch_sampler_pairs_within_the_step() -> None:
    ids = np.repeat(np.arange(30), 3)
    ids[60:] = np.arange(100, 130)  # the last 30 faces are singletons
    sampler = PairSampler(ids, np.arange(90), np.random.default_rng(1))
    images, ia, ib = sampler.batch(16, 40, 0.5)
    assert len(images) == 16 and len(ia) == len(ib) <= 40
    assert ia.max() < 16 and ib.max() < 16
    same = ids[images[ia]] == ids[images[ib]]
    assert same[:20].all() and not same[20:].any()
    assert (images[ia] != images[ib]).all()


def test_zero_padding_lets_attention_find_the_border_and_replicate_does_not() -> None:
    """The same features in every cell: any unevenness of W comes from position alone."""
    torch.manual_seed(3)
    flat = torch.randn(2, 6, 1, 1).expand(2, 6, 5, 5).contiguous()  # grid features
    spread = {}
    for padding in ("zeros", "replicate"):
        torch.manual_seed(4)
        head = XCosHead(dataclasses.replace(CFG, height=5, width=5,
                                            attention_padding=padding)).eval()
        torch.nn.init.normal_(head.attention.fuse2.weight)
        with torch.no_grad():
            w = head.attention(flat, flat.flip(0))
        spread[padding] = float(w.max() - w.min())
    assert spread["zeros"] > 1e-3 and spread["replicate"] < 1e-6


def test_a_separate_shared_attention_projection_reads_content_not_position() -> None:
    """Cell-specific grid, W from its own shared projection: the same map in every cell gives a
    uniform W (nothing tells the cells apart), while S still uses the per-cell grid."""
    torch.manual_seed(5)
    cfg = dataclasses.replace(CFG, height=5, width=5, cell_specific=True,
                              attention_shared=True, attention_padding="replicate")
    head = XCosHead(cfg).eval()
    torch.nn.init.normal_(head.attention.fuse2.weight)
    flat = torch.randn(3, 8, 1, 1).expand(3, 8, 5, 5).contiguous()
    with torch.no_grad():
        feats = head.features(flat)
        assert feats.shape == (3, 12, 5, 5)  # F (6 channels) then the attention's own 6
        out = head(flat[:2], flat[1:])
        assert float(out.attention.max() - out.attention.min()) < 1e-6
        assert float(out.similarity.std()) > 1e-3  # S differs per cell: the grid is per cell
        a, b = torch.tensor([0, 1]), torch.tensor([1, 2])
        indexed = head.compare_indexed(feats, a, b)
        assert torch.allclose(indexed.score, out.score, atol=1e-6)
    free = XCosHead(dataclasses.replace(cfg, attention_shared=False)).eval()
    torch.nn.init.normal_(free.attention.fuse2.weight)
    with torch.no_grad():
        w = free(flat[:2], flat[1:]).attention
    assert float(w.max() - w.min()) > 1e-4  # from F, the per-cell grid tells cells apart


def test_unknown_attention_padding_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="padding"):
        XCosHead(dataclasses.replace(CFG, attention_padding="reflect-ish"))


def test_untrained_learned_attention_is_uniform() -> None:
    head = XCosHead(CFG).eval()
    with torch.no_grad():
        out = head(torch.randn(2, 8, 4, 3), torch.randn(2, 8, 4, 3), "L")
    assert torch.allclose(out.attention, uniform_attention(4, 3).expand(2, -1, -1))


@pytest.mark.usefixtures("one_thread")
def test_training_with_occluded_faces_runs_and_learns() -> None:
    data = _synthetic()
    hidden = data.maps.clone()
    hidden[:, :, 1:3, 1] = 0  # the identity cells are hidden
    data = TrainingData(data.maps, data.teacher, data.identities, hidden)
    cfg = XCosTrainConfig(epochs=6, pairs_per_epoch=512, batch_images=24, batch_pairs=64,
                          pearson_pairs=200, grid_channels=6, reduced_channels=4, lr=3e-3,
                          occlusion_prob=0.5)
    result = train_head(data, np.arange(len(data.identities)), cfg, CFG, progress=False)
    assert result.history[-1]["cos"] < result.history[0]["cos"]


def test_hard_impostors_are_the_most_similar_different_people() -> None:
    from facexplain.train.xcos import _with_hard_impostors

    unit = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05]]), dim=1)
    ids = np.array([0, 1, 2, 0])
    ia, ib = np.array([0, 0, 2]), np.array([3, 2, 1])  # one genuine, two impostors
    ha, hb = _with_hard_impostors(ia, ib, unit, ids, 0.5)
    assert (ha[0], hb[0]) == (0, 3)  # genuine untouched
    assert {int(ha[1]), int(hb[1])} in ({1, 3}, {0, 1})  # the closest different-identity pair
    assert ids[ha[1]] != ids[hb[1]]


def test_cellwise_projection_is_a_1x1_conv_per_cell(tmp_path: Path) -> None:
    from dataclasses import replace

    from facexplain.heads.xcos import CellwiseConv1x1

    torch.manual_seed(0)
    cellwise = CellwiseConv1x1(8, 5, 4, 3)
    x = torch.randn(2, 8, 4, 3)
    out = cellwise(x)
    for i, j in ((0, 0), (3, 2), (1, 2)):  # every cell is its own linear map of that cell
        expected = x[:, :, i, j] @ cellwise.weight[i, j].T + cellwise.bias[:, i, j]
        assert torch.allclose(out[:, :, i, j], expected, atol=1e-6)
    shared = torch.nn.Conv2d(8, 5, 1)
    with torch.no_grad():  # equal weights in every cell: the shared 1x1 conv
        cellwise.weight.copy_(shared.weight[:, :, 0, 0].expand(4, 3, -1, -1))
        cellwise.bias.copy_(shared.bias[:, None, None].expand(-1, 4, 3))
    assert torch.allclose(cellwise(x), shared(x), atol=1e-6)
    head = XCosHead(replace(CFG, cell_specific=True)).eval()
    loaded, _ = load_head(save_head(head, checkpoint_path("tiny", None, tmp_path)))
    assert loaded.config.cell_specific
    with torch.no_grad():
        assert torch.equal(loaded(x, x.flip(0)).score, head(x, x.flip(0)).score)
