"""Pieces of the randomisation sanity check on a tiny model (closed-form expectations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from facexplain.benchmarks.sanity import parameters_in_forward_order, randomize_top
from facexplain.benchmarks.sanity_stats import (
    excess_with_ci,
    identical_groups,
    pairing_matrix,
    spearman,
    ssim,
    verdict,
)


class Chain(nn.Module):
    """Layers registered in the opposite order to the one forward uses them."""

    def __init__(self) -> None:
        super().__init__()
        self.last = nn.Linear(4, 2)
        self.first = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(torch.relu(self.first(x)))


def test_forward_order_follows_use_not_registration() -> None:
    order = parameters_in_forward_order(Chain(), torch.randn(2, 3))
    assert order == ["first.weight", "first.bias", "last.weight", "last.bias"]


def test_randomize_top_redraws_only_the_top_fraction() -> None:
    torch.manual_seed(0)
    net = Chain()
    order = parameters_in_forward_order(net, torch.randn(2, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert randomize_top(net, order, 0.5, seed=1) == 2
    after = net.state_dict()
    assert torch.equal(after["first.weight"], before["first.weight"])
    assert torch.equal(after["first.bias"], before["first.bias"])
    assert not torch.equal(after["last.weight"], before["last.weight"])
    assert not torch.equal(after["last.bias"], before["last.bias"])


def test_similarity_measures() -> None:
    torch.manual_seed(0)
    a = torch.rand(2, 16, 16)
    assert spearman(a, a) == 1.0 and spearman(a, -a) == -1.0
    assert abs(spearman(a, torch.rand(2, 16, 16))) < 0.2
    assert ssim(a, a) == 1.0
    assert abs(ssim(a, 3 * a + 1) - 1.0) < 1e-9  # each map is scaled to [0, 1] first


def test_report_states_the_stored_sanity_verdict(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from facexplain.explain.trust import sanity_note, save_sanity_records

    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path))  # user records start empty
    assert "FAILED for the signed map" in sanity_note("dlib-resnet", "guided")  # packaged
    assert "passed" in sanity_note("sface", "occlusion")
    assert "not run for nobody" in sanity_note("nobody", "occlusion")
    row = {"method": "occlusion", "full": {"spearman_signed": 0.9}, "chance": {
        "spearman_signed": 0.1}, "pass": {"spearman_signed": False}}
    save_sanity_records({"backbone": "sface", "rows": [row], "n_pairs": 2, "margin": 0.2,
                         "date": "2026-12-01"})  # a user's run overrides the packaged one
    assert "FAILED for the signed map" in sanity_note("sface", "occlusion")
    rise = {**row, "method": "rise"}
    save_sanity_records({"backbone": "sface", "rows": [rise], "n_pairs": 2, "margin": 0.2,
                         "date": "2026-12-06", "options": {"samples": 250}})
    assert "maps at 250 samples per face" in sanity_note("sface", "rise")
    assert "samples" not in sanity_note("sface", "occlusion")  # a budget only where it applies


def _planted_maps(n: int, tied: float, seed: int) -> tuple[list[torch.Tensor], np.ndarray]:
    """Real maps of ``n`` pairs, and randomised maps that keep ``tied`` of each real map."""
    gen = torch.Generator().manual_seed(seed)
    real = [torch.rand(2, 12, 12, generator=gen) for _ in range(n)]
    rand = [tied * r + (1 - tied) * torch.rand(2, 12, 12, generator=gen) for r in real]
    own = np.array([spearman(a, b) for a, b in zip(real, rand, strict=True)])
    return real, own


@pytest.mark.parametrize(("tied", "expected"), [(0.0, "pass"), (0.95, "fail")])
def test_verdict_needs_the_interval_to_clear_the_margin(tied: float, expected: str) -> None:
    real, own = _planted_maps(30, tied, seed=0)
    ex = excess_with_ci(own, pairing_matrix(real, spearman), n_boot=300)
    assert ex["ci"][0] <= ex["value"] <= ex["ci"][1] and ex["n_pairings"] == 435
    assert verdict(ex, margin=0.2, n_pairs=30) == expected
    assert verdict(ex, margin=0.2, n_pairs=6) == "inconclusive"  # too few pairs for a verdict
    straddling = {**ex, "ci": [0.1, 0.3]}
    assert verdict(straddling, margin=0.2, n_pairs=30) == "inconclusive"


def test_identical_maps_are_merged_and_different_ones_kept_apart() -> None:
    gen = torch.Generator().manual_seed(0)
    a = [torch.rand(2, 8, 8, generator=gen) for _ in range(3)]
    b = [t * 1.0 for t in a]
    c = [t + 0.1 for t in a]
    assert identical_groups({"saliency": a, "deconv": b, "ig": c, "guided": b}) == [
        ["saliency", "deconv", "guided"], ["ig"]]
