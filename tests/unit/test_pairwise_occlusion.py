"""Pairwise occlusion on tiny models with closed-form maps, and against Captum's Occlusion."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import Occlusion

from facexplain.backbones.base import FaceModel
from facexplain.benchmarks.occlusion import max_delta_separation, select_pairs
from facexplain.cli.app import main
from facexplain.datasets.lfw import LfwPair
from facexplain.errors import AssetMissing, InvalidArgument, UnknownBackbone
from facexplain.explain.base import ExplanationMaps
from facexplain.explain.fills import (
    FILLS,
    gaussian_blur,
    load_mean_face,
    make_fill,
    save_mean_face,
    template_for_size,
)
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.occlusion_loop import (
    axis_windows,
    normalize_delta,
    occlusion_windows,
    pairwise_occlusion_delta,
)
from facexplain.explain.theta import ThetaRecord, calibrate_theta, get_theta, save_theta
from tests.conftest import SHARED_DATA


def neg_sq_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A 'similarity' whose occlusion effect is known: −mean over channels of Σ (a − b)²."""
    return -((a - b) ** 2).sum(dim=(2, 3)).mean(dim=1)


def linear_score(w: torch.Tensor, v: torch.Tensor):  # type: ignore[no-untyped-def]
    def score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * w).sum(dim=(1, 2, 3)) + (b * v).sum(dim=(1, 2, 3))

    return score


def tiny_net(h: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 8, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(8 * ((h - 3) // 2 + 1) ** 2, 16),
    )
    return net.eval()


def cosine_score(net: torch.nn.Module):  # type: ignore[no-untyped-def]
    def score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(net(a / 255), net(b / 255), dim=-1)

    return score


def random_pair(h: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, h, h, generator=g) * 255


# --- windows -------------------------------------------------------------------------------


def test_axis_windows_cover_the_border() -> None:
    assert axis_windows(5, 2, 2) == [(0, 2), (2, 4), (3, 5)]  # last patch flush, full size
    assert axis_windows(5, 2, 2, "clip") == [(0, 2), (2, 4), (4, 5)]  # Captum's rule
    assert axis_windows(6, 2, 2) == axis_windows(6, 2, 2, "clip") == [(0, 2), (2, 4), (4, 6)]
    assert len(occlusion_windows(112, 112, 8, 1)) == 105 * 105
    assert len(occlusion_windows(112, 112, 16, 8)) == 13 * 13


@pytest.mark.parametrize(("k", "s"), [(0, 1), (4, 0), (4, 5), (20, 1)])
def test_bad_windows_raise(k: int, s: int) -> None:
    with pytest.raises(InvalidArgument):
        axis_windows(16, k, s)


# --- closed-form maps ----------------------------------------------------------------------


def test_single_pixel_patches_give_the_squared_difference() -> None:
    pair = random_pair(6)
    fill = make_fill(pair, "zero")
    res = pairwise_occlusion_delta(neg_sq_distance, pair, fill, patch=1, stride=1)
    expected = ((pair[0] - pair[1]) ** 2).mean(dim=0)  # hiding a pixel in both removes it
    torch.testing.assert_close(res.delta, expected, rtol=1e-5, atol=1e-2)
    assert res.n_windows == 36 and res.n_forward == 37


def test_disjoint_patches_give_each_block_its_own_change() -> None:
    # 4x4 faces, 2x2 patches, stride 2: each pixel lies in one patch, so its value is the
    # whole block's squared difference.
    a = torch.zeros(3, 4, 4)
    b = torch.zeros(3, 4, 4)
    b[:, 0, 0] = 3.0  # block (0, 0): difference 9 per channel
    b[:, 3, 2] = 1.0  # block (1, 1): 1
    b[:, 3, 3] = 2.0  # block (1, 1): + 4
    pair = torch.stack([a, b])
    res = pairwise_occlusion_delta(neg_sq_distance, pair, make_fill(pair, "zero"), 2, 2)
    expected = torch.tensor([[9.0, 9, 0, 0], [9, 9, 0, 0], [0, 0, 5, 5], [0, 0, 5, 5]])
    torch.testing.assert_close(res.delta, expected)


def test_linear_score_matches_the_window_average_formula() -> None:
    # For a linear score the change of one window is Σ_window g with g = w(fa − a) + v(fb − b);
    # the map is the mean of those window sums over the windows covering each pixel.
    h, k, s = 9, 3, 2
    g0 = torch.Generator().manual_seed(3)
    w, v = torch.randn(3, h, h, generator=g0), torch.randn(3, h, h, generator=g0)
    pair = random_pair(h)
    fill = make_fill(pair, "channel-mean")
    res = pairwise_occlusion_delta(linear_score(w, v), pair, fill, k, s, batch_size=5)
    g = (w * (fill[0] - pair[0]) + v * (fill[1] - pair[1])).sum(0, keepdim=True)[None].double()
    window_sums = F.avg_pool2d(g, k, s) * k * k
    ones = torch.ones(1, 1, k, k, dtype=torch.float64)
    sums = F.conv_transpose2d(window_sums, ones, stride=s)
    counts = F.conv_transpose2d(torch.ones_like(window_sums), ones, stride=s)
    expected = (sums / counts)[0, 0].float()
    torch.testing.assert_close(res.delta, expected, rtol=1e-4, atol=1e-2)


def test_occluding_where_faces_differ_raises_similarity() -> None:
    # Faces identical except one 4x4 block: hiding exactly that block in both makes them the
    # same image, similarity 1, so Δ there is 1 − sim(original) > 0 (the difference map).
    net = tiny_net(16)
    a = random_pair(16)[0]
    b = a.clone()
    b[:, 8:12, 4:8] = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(9)) * 255
    pair = torch.stack([a, b])
    score = cosine_score(net)
    maps = PairwiseOcclusion(score, patch=4, stride=4, fill="zero").explain(pair)
    with torch.no_grad():
        s0 = float(score(a[None], b[None])[0])
    assert s0 < 0.999
    assert maps.score == pytest.approx(s0, abs=1e-6)
    region = maps.maps["delta"][0, 8:12, 4:8]
    torch.testing.assert_close(region, torch.full_like(region, 1 - s0), rtol=0, atol=1e-5)
    assert float(maps.maps["difference"][0].max()) == pytest.approx(1 - s0, abs=1e-5)
    assert maps.maps["similarity"][0, 8:12, 4:8].abs().max() == 0


def test_maps_names_shapes_and_meta() -> None:
    pair = random_pair(10)
    maps = PairwiseOcclusion(neg_sq_distance, patch=4, stride=2, fill="zero",
                             theta=50.0).explain(pair)
    assert isinstance(maps, ExplanationMaps) and maps.method == "occlusion"
    d = maps.maps["delta"]
    assert set(maps.maps) == {"delta", "difference", "similarity", "difference_normalized"}
    for m in maps.maps.values():
        assert m.shape == (2, 10, 10) and m.dtype == torch.float32
    torch.testing.assert_close(d[0], d[1])
    torch.testing.assert_close(maps.maps["difference"], d.clamp(min=0))
    torch.testing.assert_close(maps.maps["similarity"], (-d).clamp(min=0))
    torch.testing.assert_close(maps.maps["difference_normalized"], (d / 50).clamp(0, 1))
    assert maps.meta.k == 4 and maps.meta.s == 2 and maps.meta.fill == "zero"
    assert maps.meta.n_forward == 4 * 4 + 1


def test_input_not_mutated_deterministic_and_batch_size_free() -> None:
    net = tiny_net(12)
    pair = random_pair(12)
    before = pair.clone()
    runs = [PairwiseOcclusion(cosine_score(net), 4, 2, fill="blur", batch_size=bs).explain(pair)
            for bs in (1, 7, 1000, 7)]
    assert torch.equal(pair, before)
    assert torch.equal(runs[1].maps["delta"], runs[3].maps["delta"])
    for r in runs:
        torch.testing.assert_close(r.maps["delta"], runs[0].maps["delta"], rtol=0, atol=1e-6)


def test_score_that_edits_its_input_in_place_changes_nothing() -> None:
    def in_place(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a.sub_(127.5)
        b.sub_(127.5)
        return neg_sq_distance(a, b)

    pair = random_pair(8)
    before = pair.clone()
    res = pairwise_occlusion_delta(in_place, pair, make_fill(pair, "zero"), 2, 2, batch_size=3)
    clean = pairwise_occlusion_delta(neg_sq_distance, pair, make_fill(pair, "zero"), 2, 2)
    assert torch.equal(pair, before)
    torch.testing.assert_close(res.delta, clean.delta)


def test_black_box_score_must_return_one_value_per_pair() -> None:
    def bad(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.zeros(a.shape[0], 2)

    with pytest.raises(InvalidArgument, match="one value per pair"):
        PairwiseOcclusion(bad, 2, 2, fill="zero").explain(random_pair(4))


def test_bad_arguments_raise() -> None:
    with pytest.raises(InvalidArgument, match="unknown fill"):
        PairwiseOcclusion(neg_sq_distance, fill="grey")
    with pytest.raises(InvalidArgument, match="edge"):
        PairwiseOcclusion(neg_sq_distance, edge="wrap")
    with pytest.raises(InvalidArgument, match="Θ"):
        PairwiseOcclusion(neg_sq_distance, theta=0.0)
    with pytest.raises(InvalidArgument, match=r"\(2, 3, H, W\)"):
        PairwiseOcclusion(neg_sq_distance, fill="zero").explain(torch.zeros(3, 8, 8))


# --- Captum ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "k", "s", "edge"), [(17, 5, 3, "shift"), (16, 4, 2, "shift"),
                                                   (15, 4, 3, "clip")])
def test_same_map_as_captum_occlusion_on_the_stacked_pair(h: int, k: int, s: int,
                                                           edge: str) -> None:
    net = tiny_net(h)
    score = cosine_score(net)
    pair = random_pair(h)
    fill = make_fill(pair, "blur")  # a different fill per face, as Captum's baselines allow
    ours = PairwiseOcclusion(score, k, s, fill=fill, edge=edge, batch_size=8).explain(pair)
    captum = Occlusion(lambda x6: score(x6[:, :3], x6[:, 3:])).attribute(
        pair.reshape(1, 6, h, h), sliding_window_shapes=(6, k, k), strides=(6, s, s),
        baselines=fill.reshape(1, 6, h, h), perturbations_per_eval=8,
    )
    # Captum's attribution is original − occluded, averaged over covering windows: −Δ.
    theirs = -captum[0]
    for c in range(6):
        assert float((theirs[c] - ours.maps["delta"][0]).abs().max()) <= 1e-5


# --- fills ---------------------------------------------------------------------------------


def test_fills() -> None:
    pair = random_pair(14)
    zero = make_fill(pair, "zero")
    assert zero.shape == pair.shape and zero.abs().max() == 0
    cm = make_fill(pair, "channel-mean")
    torch.testing.assert_close(cm[1, :, 3, 5], pair.mean(dim=(0, 2, 3)))
    assert torch.equal(cm[0], cm[1])
    blur = make_fill(pair, "blur")
    assert blur.shape == pair.shape and blur.std() < pair.std()
    flat = torch.full((1, 3, 9, 9), 77.0)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    with pytest.raises(InvalidArgument):
        make_fill(pair, "grey")
    assert set(FILLS) == {"mean-face", "channel-mean", "zero", "blur"}


def test_explicit_fill_tensor_is_used_for_both_faces() -> None:
    pair = torch.zeros(2, 3, 4, 4)
    fill = torch.full((3, 4, 4), 2.0)
    maps = PairwiseOcclusion(neg_sq_distance, 4, 4, fill=fill).explain(pair)
    assert maps.meta.fill == "custom"
    assert float(maps.maps["delta"].abs().max()) == 0  # same fill in both: still identical


def test_mean_face_store_and_load(tmp_path: Path) -> None:
    face = torch.rand(3, 112, 112) * 255
    save_mean_face(face, "arcface-112", {"n_images": 3, "command": "test"}, tmp_path)
    loaded = load_mean_face("arcface-112", tmp_path)
    assert loaded.shape == (3, 112, 112)
    assert float((loaded - face).abs().max()) <= 0.5  # stored as 8-bit PNG
    record = json.loads((tmp_path / "mean_faces.json").read_text())
    assert record["arcface-112"]["n_images"] == 3
    with pytest.raises(AssetMissing, match="mean-face"):
        load_mean_face("dlib-150", tmp_path)
    assert template_for_size(150, 150) == "dlib-150"
    with pytest.raises(InvalidArgument):
        template_for_size(100, 100)


def test_packaged_mean_faces_fit_their_templates() -> None:
    for name, size in (("arcface-112", 112), ("arcface-224", 224), ("dlib-150", 150)):
        face = load_mean_face(name)
        assert face.shape == (3, size, size)
        assert 40 < float(face.mean()) < 200  # a face, not an empty or saturated image


# --- Θ ---------------------------------------------------------------------------------------


def test_normalize_delta_clips_to_unit_range() -> None:
    d = torch.tensor([-0.1, 0.0, 0.05, 0.1, 0.2])
    torch.testing.assert_close(normalize_delta(d, 0.1), torch.tensor([0, 0, 0.5, 1, 1]))
    with pytest.raises(InvalidArgument):
        normalize_delta(d, 0.0)


def test_calibrate_theta_separates_genuine_below_from_impostor_above() -> None:
    max_d = np.array([0.01, 0.02, 0.03, 0.05, 0.08])
    same = np.array([True, True, True, False, False])
    assert calibrate_theta(max_d, same) == pytest.approx(0.04)
    with pytest.raises(InvalidArgument, match="not positive"):
        calibrate_theta(np.array([-0.3, -0.2]), np.array([True, False]))


def test_theta_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "theta.json"
    rec = ThetaRecord("sface", 16, 8, "mean-face", 0.05, [0.05] * 10, 0.9, 300, "cmd", "today")
    save_theta(rec, path)
    assert get_theta("sface", 16, 8, "mean-face", path) == rec
    assert get_theta("sface", 16, 4, "mean-face", path) is None


def test_held_out_separation_on_separable_folds() -> None:
    folds = np.repeat(np.arange(3), 4)
    same = np.tile([True, True, False, False], 3)
    max_d = np.where(same, 0.01, 0.1) + folds * 0.001
    sep = max_delta_separation(max_d, same, folds)
    assert sep.heldout_auc_mean == 1.0 and sep.pooled_auc == 1.0
    assert sep.genuine_dark_fraction == 1.0 and sep.impostor_lit_fraction == 1.0
    assert all(0.01 < t < 0.1 for t in sep.fold_thetas)


def test_select_pairs_spreads_both_classes_over_folds() -> None:
    pairs = [LfwPair("a", i, "a" if same else "b", i + 1, same, f)
             for f in range(10) for same in (True, False) for i in range(20)]
    chosen = select_pairs(pairs, 25)
    assert sum(p.same for p in chosen) == 25 and len(chosen) == 50
    per_fold = [sum(1 for p in chosen if p.fold == f and p.same) for f in range(10)]
    assert per_fold == [3] * 5 + [2] * 5
    with pytest.raises(InvalidArgument, match="folds"):
        select_pairs(pairs, 5)


# --- CLI -----------------------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    old = sys.argv
    sys.argv = ["facexplain", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--stride", "0"], "stride must be >= 1"),
    (["--patch", "200"], "larger than the 112-pixel image"),
    (["--patch", "4", "--stride", "8"], "never occluded"),
    (["--fill", "grey"], "unknown fill"),
    (["--pairs-per-class", "3"], ">= the 10 folds"),
    (["--backbone", "nope"], "unknown backbone"),
    (["--device", "abacus"], "unknown torch device"),
    (["--study-pairs", "/nonexistent/set.json"], "study pair set not found"),
    (["--study-pairs", str(SHARED_DATA / "lfw" / "pairs.txt")], "not a study pair set"),
    (["--study-pairs", str(SHARED_DATA / "lfw" / "pairs.txt"), "--write-theta"],
     "not with --study-pairs"),
])
def test_occlusion_stats_cli_rejects_bad_arguments(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = str(SHARED_DATA / "lfw" / "pairs.txt")
    code, err = run_cli(["benchmark", "occlusion-stats", "--pairs", pairs, *args], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]


def test_mean_face_cli_rejects_unknown_template(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["benchmark", "mean-face", "--template", "arcface-96"], capsys)
    assert code != 0 and "unknown template 'arcface-96'" in err


class TinyFaceModel(FaceModel):
    """Mean colour of each 28x28 block as the embedding: a registered-size stand-in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 28).flatten(1) + 1.0


def test_for_backbone_uses_the_template_mean_face_and_stored_theta() -> None:
    occ = PairwiseOcclusion.for_backbone(TinyFaceModel(), "sface", patch=56, stride=56)
    assert occ.template == "arcface-112" and occ.fill == "mean-face"
    assert occ.theta is None  # no Θ stored for k=56
    maps = occ.explain(random_pair(112))
    assert maps.meta.n_forward == 5 and maps.maps["delta"].shape == (2, 112, 112)
    with pytest.raises(UnknownBackbone):
        PairwiseOcclusion.for_backbone(TinyFaceModel(), "nope")


def _details(max_delta: float, theta: float | None, k: int = 16, s: int = 8):  # type: ignore[no-untyped-def]
    from facexplain.explain.occlusion import OcclusionDetails

    return OcclusionDetails(k=k, s=s, fill="mean-face", edge="shift", n_forward=10, n_windows=9,
                            batch_size=32, incremental=False, theta=theta, max_delta=max_delta)


def test_report_text_states_max_delta_against_theta() -> None:
    from facexplain.methods.occlusion import note

    delta = torch.zeros(2, 8, 8)
    lit = ExplanationMaps("occlusion", {"delta": delta}, 0.2, _details(0.05, 0.03))
    dark = ExplanationMaps("occlusion", {"delta": delta}, 0.9, _details(0.005, 0.03))
    assert "Max Δ = 0.0500" in note(lit) and "lit: above" in note(lit)
    assert "dark: below" in note(dark)
    missing = ExplanationMaps("occlusion", {"delta": delta}, 0.2, _details(0.05, None, 32, 16))
    assert "No Θ: none is stored" in note(missing) and "k=32" in note(missing)
