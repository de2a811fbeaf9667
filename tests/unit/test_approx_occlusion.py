"""Approximate occlusion (--approx): drill-down and the projective-field threshold behave as
documented, and the error they introduce is measured, not assumed."""

from __future__ import annotations

import pytest
import torch

from facexplain.errors import InvalidArgument
from facexplain.explain.approx_occlusion import ApproxSettings, approximate_occlusion_delta
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.scorer import PairScorer
from facexplain.methods.registry import get_method
from facexplain.report.sections import render_method
from tests.unit.test_incremental import StagedNet


@pytest.fixture()
def case() -> tuple[PairScorer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    scorer = PairScorer(StagedNet().eval())
    pair = torch.rand(2, 3, 37, 37) * 255
    return scorer, pair, torch.full_like(pair, 128.0)


def _exact(scorer: PairScorer, pair: torch.Tensor, k: int, s: int) -> torch.Tensor:
    return PairwiseOcclusion(scorer, k, s, fill=torch.full_like(pair, 128.0)).explain(pair
                                                                                   ).maps["delta"][0]


def test_without_cap_and_drilling_everything_it_is_the_exact_map(case) -> None:  # type: ignore[no-untyped-def]
    scorer, pair, fill = case
    approx = approximate_occlusion_delta(scorer, pair, fill, 6, 2, ApproxSettings(cap=None,
                                                                                  drill=1.0))
    assert float((approx.result.delta - _exact(scorer, pair, 6, 2)).abs().max()) <= 1e-5
    assert approx.check_error <= 1e-3 and approx.n_checked == 8  # relative to max |Δ|


def test_drill_down_recomputes_only_the_strong_part_and_keeps_it_exact(case) -> None:  # type: ignore[no-untyped-def]
    scorer, pair, fill = case
    exact = _exact(scorer, pair, 6, 1)
    approx = approximate_occlusion_delta(scorer, pair, fill, 6, 1, ApproxSettings(cap=None,
                                                                                  drill=0.2))
    n_fine = len(range(0, 37 - 6 + 1)) ** 2
    assert approx.coarse_windows < n_fine and 0 < approx.fine_windows < n_fine
    assert approx.result.n_windows < n_fine  # cheaper than the exact map
    # The drilled pixels (the strongest 20% of the coarse map) carry the exact fine values.
    same = (approx.result.delta - exact).abs() <= 1e-5
    assert 0.2 <= float(same.float().mean()) < 1.0


def test_the_cap_trades_accuracy_and_the_sampled_error_shows_it(case) -> None:  # type: ignore[no-untyped-def]
    scorer, pair, fill = case
    capped = approximate_occlusion_delta(scorer, pair, fill, 6, 2, ApproxSettings(cap=0.2,
                                                                                  drill=1.0))
    exact = _exact(scorer, pair, 6, 2)
    true_error = float((capped.result.delta - exact).abs().max())
    assert true_error > 1e-4  # the cap really drops part of each patch's influence ...
    assert capped.check_error > 1e-4  # ... and the sampled check reports an error


def test_bad_settings_are_one_clear_error(case) -> None:  # type: ignore[no-untyped-def]
    scorer, pair, fill = case
    with pytest.raises(InvalidArgument, match="τ"):
        approximate_occlusion_delta(scorer, pair, fill, 6, 2, ApproxSettings(cap=1.5))
    with pytest.raises(InvalidArgument, match="drill"):
        approximate_occlusion_delta(scorer, pair, fill, 6, 2, ApproxSettings(drill=0.0))
    with pytest.raises(InvalidArgument, match="incremental"):
        PairwiseOcclusion(scorer, 6, 2, incremental=False, approx=ApproxSettings())


def test_the_report_says_the_map_is_approximate_with_its_error(case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    scorer, pair, fill = case
    maps = PairwiseOcclusion(scorer, 6, 2, fill=fill, approx=ApproxSettings(drill=0.3)
                             ).explain(pair)
    text = render_method(get_method(maps.method), maps, pair, tmp_path).text
    assert "APPROXIMATE map" in text and "largest error" in text
    assert maps.meta.approx_error is not None  # type: ignore[attr-defined]
