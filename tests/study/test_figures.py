"""Figs. 8 and 9 of a simulated study (8 real LFW pairs, 4 catch trials) in which one
participant scores 37.5% alone and one answers at random: every participant and every bar
lies inside the plotted axes (fixed 0.4-1 and 0.5-1 axes left the 37.5% scorer out)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.container import ErrorbarContainer

from facexplain.study.analyze import analyze_study, load_results
from facexplain.study.figures import draw_fig8, draw_fig9
from facexplain.study.simulate import simulate_study
from facexplain.study.store import REAL, open_study
from tests.study.conftest import MakeStudy


def answer(store: object, who: object, phase: int, order: tuple[int, ...], right: int,
           truth: dict[int, bool], kinds: dict[int, str]) -> None:
    """Answer a round: the first ``right`` real pairs and every catch trial right, the other
    real pairs wrong ("sure same" = 1, "sure different" = 5)."""
    k = 0
    for pair in order:
        ok = kinds[pair] != REAL or k < right
        k += kinds[pair] == REAL
        choice = 1 if truth[pair] == ok else 5
        store.record(who, phase, pair, choice, 2000)  # type: ignore[attr-defined]


def inside(values: np.ndarray, lim: tuple[float, float]) -> bool:
    return bool(np.all((values >= lim[0]) & (values <= lim[1])))


def test_every_participant_of_a_low_scoring_study_is_drawn(make_plain_study: MakeStudy,
                                                           tmp_path: Path) -> None:
    made = make_plain_study(n_pairs=8, conditions=("none", "occlusion"), per_condition=3,
                            catch=4)
    low = [p for p in made.participants if p.condition == "occlusion"][1]
    with open_study(made.folder) as store:
        truth = {int(r["idx"]): bool(r["same"]) for r in store.pairs()}
        kinds = store.pair_kinds()
        answer(store, low, 1, low.order1, 3, truth, kinds)  # 3 of 8: 37.5%
        answer(store, low, 2, low.order2, 5, truth, kinds)
    planted = simulate_study(made.folder, {"occlusion": 0.1}, seed=2, careless=1)
    careless = [p.id for p in planted if p.careless]
    assert careless and careless[0] != low.id
    res = load_results(made.folder)
    me = next(p for p in res.people if p.id == low.id)
    assert me.accuracy == (0.375, 0.625) and me.kept and me.catch_correct == 8
    assert res.screening.screened == tuple(careless) and res.screening.kept == 5

    fig = draw_fig9(res.people, res.conditions)
    drawn = []
    for ax, cond in zip(fig.axes, res.conditions, strict=True):
        pts = np.concatenate([c.get_offsets() for c in ax.collections])
        assert inside(pts[:, 0], ax.get_xlim()) and inside(pts[:, 1], ax.get_ylim()), cond
        want = sorted(p.accuracy for p in res.people if p.condition == cond)
        assert sorted(map(tuple, pts.tolist())) == want  # everyone, the screened one too
        drawn += want
    assert (0.375, 0.625) in drawn  # below the old fixed 0.4 axis, now inside
    plt.close(fig)

    fig = draw_fig8(res.table, res.model_acc)
    ax = fig.axes[0]
    lim = ax.get_ylim()
    heights = np.asarray([b.get_height() for b in ax.patches])
    assert len(heights) == 4 and inside(heights, lim)
    ends = np.concatenate([seg[:, 1] for cont in ax.containers
                           if isinstance(cont, ErrorbarContainer)
                           for col in cont.lines[2] for seg in col.get_segments()])
    assert len(ends) == 8 and inside(ends, lim)
    assert ends.min() < 0.5  # the 37.5% scorer pulls the occlusion bar's spread below 0.5
    plt.close(fig)

    report = analyze_study(made.folder, tmp_path / "a").read_text()
    assert "Kept <b>5 of 6</b>" in report and "37.50%" in report
    occl = next(c for c in res.table if c.condition == "occlusion")
    assert occl.n == 3 - (careless[0].startswith("occlusion")) and occl.finished == 3
    assert abs(occl.before_mean - np.mean([p.accuracy[0] for p in res.people
                                           if p.condition == "occlusion" and p.kept])) < 1e-12
