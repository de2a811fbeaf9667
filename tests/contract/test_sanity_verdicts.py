"""Sanity verdicts do not flip with the pair set: on sface, two disjoint sets of 30 held-out
LFW pairs never give a method opposite verdicts (pass on one, FAIL on the other) for any
measure; where the excess over chance sits near the margin, one set may be conclusive and the
other "inconclusive" (its interval straddles the margin), which is what the interval is for.

Cheaper settings than the benchmark's (full randomisation only, 32-pixel occlusion patches,
four integrated-gradients steps) keep it a few minutes; the heads of xCos and the part filters
are the contract tests' random ones (the check is about the verdict's stability, not the head).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facexplain.benchmarks.sanity import SanityConfig, run_sanity
from facexplain.pipeline import FacePipeline

pytestmark = pytest.mark.slow


@pytest.mark.long  # two sanity runs over every method: about five minutes on two cores
def test_two_disjoint_pair_sets_give_the_same_verdicts(contract_home: Path) -> None:
    del contract_home
    pipe = FacePipeline("sface", forward_runtime=False)
    runs = [run_sanity(SanityConfig(backbone="sface", n_pairs=30, offset=offset, cascade=(),
                                    patch=32, stride=32, ig_steps=4, n_boot=300,
                                    progress=False), pipe)
            for offset in (0, 30)]
    assert not set(runs[0]["pairs"]) & set(runs[1]["pairs"])  # type: ignore[arg-type]
    first, second = ({r["method"]: r for r in run["rows"]} for run in runs)  # type: ignore[attr-defined]
    assert first.keys() == second.keys()
    assert any(r["same_as"] for r in first.values())  # saliency = deconv = guided on sface
    opposite, agree, cells = [], 0, 0
    for method, row in first.items():
        for measure, v in row["verdict"].items():
            w = second[method]["verdict"][measure]
            cells, agree = cells + 1, agree + (v == w)
            if {v, w} == {"pass", "fail"}:
                opposite.append(f"{method}/{measure}: {v} vs {w}")
    assert opposite == []
    assert agree >= cells - 3  # conclusive against inconclusive: a few cells near the margin


def test_an_interrupted_run_resumes_from_its_finished_maps(
        contract_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run of the same configuration computes no map again: it reads them all."""
    import dataclasses

    from facexplain.benchmarks import sanity

    del contract_home
    pipe = FacePipeline("sface", forward_runtime=False)
    cfg = SanityConfig(backbone="sface", n_pairs=4, methods=("gradcam",), cascade=(),
                       n_boot=50, progress=False)
    first = run_sanity(cfg, pipe)

    class Refuses:
        def explain(self, pair: object) -> None:
            raise AssertionError("a finished map was computed again")

    real_get = sanity.get_method
    monkeypatch.setattr(sanity, "get_method", lambda name: dataclasses.replace(
        real_get(name), build=lambda scorer, options: Refuses()))
    again = run_sanity(cfg, pipe)
    assert again["rows"] == first["rows"]
    other = dataclasses.replace(cfg, seed=1)  # other random weights: nothing to reuse
    with pytest.raises(AssertionError, match="computed again"):
        run_sanity(other, pipe)
