"""Component findings on the planted game, on findings whose right answer is known: top-k over
the four planted components and over all seven, false findings, the summary's intervals, the
table; and the harder set's pasted areas (seeded, around their landmark group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from facexplain.benchmarks.planted_box import pair_rng, paste_mask
from facexplain.benchmarks.planted_components import component_scores, ranked, summarise_components
from facexplain.benchmarks.planted_pairs import REGION_POINTS, impostor_pairs
from facexplain.benchmarks.planted_report import components_table
from facexplain.datasets.lfw import LfwPair
from facexplain.types import COMPONENTS, ComponentFinding, MethodDetails


def findings(order: list[str], differs: int = 0, hidden: tuple[str, ...] = ()
             ) -> list[dict[str, Any]]:
    """Every component, ranked in ``order`` (the rest after), the first ``differs`` of them
    "differs", those in ``hidden`` not assessable (no rank)."""
    rest = [c for c in COMPONENTS if c not in order]
    out: list[dict[str, Any]] = []
    rank = 1
    for c in [*order, *rest]:
        if c in hidden:
            out.append({"component": c, "score": None, "theta": 1.0, "finding": "not assessable",
                        "rank": None})
            continue
        out.append({"component": c, "score": 1.0 / rank, "theta": 1.0,
                    "finding": "differs" if rank <= differs else "consistent", "rank": rank})
        rank += 1
    return out


def test_top_k_over_the_four_planted_components_and_over_all_seven() -> None:
    jaw_first = findings(["jaw", "eyes", "nose"], differs=1)
    s = component_scores(jaw_first, "eyes")
    assert s["top1"] == 1.0 and s["top1_all"] == 0.0 and s["top2_all"] == 1.0
    assert s["any_differs"] == 1.0 and s["planted_differs"] == 0.0
    second = component_scores(findings(["nose", "eyebrows"], differs=2), "brows")
    assert (second["top1"], second["top2"], second["planted_differs"]) == (0.0, 1.0, 1.0)
    assert ranked(findings(["mouth"], hidden=("mouth",)))[-1] == "mouth"  # unassessed: last
    missed = component_scores(findings(["mouth"], hidden=("mouth",)), "mouth")
    assert missed["top1"] == missed["top2"] == missed["planted_assessable"] == 0.0


def test_controls_count_pairs_with_any_differs() -> None:
    s = component_scores(findings(["cheeks"]), "")
    assert s == {"any_differs": 0.0, "n_differs": 0.0}  # no region: no top-k
    assert component_scores(findings(["cheeks"], differs=2), "")["n_differs"] == 2.0


def test_summary_means_intervals_and_cost() -> None:
    recs = []
    for i in range(40):
        order = ["eyes"] if i % 4 else ["nose", "eyes"]  # 30 of 40 right at top-1
        recs.append({"kind": "altered", "region": "eyes", "seconds": {"components": 0.5},
                     "components": {"components": findings(order, differs=1)}})
    recs += [{"kind": "untouched", "region": "nose", "seconds": {"components": 0.3},
              "components": {"components": findings(["nose"], differs=int(i == 0))}}
             for i in range(20)]
    recs += [{"kind": "impostor", "region": "", "seconds": {"components": 0.4},
              "components": {"components": findings(["mouth"], differs=1)}} for _ in range(10)]
    out = summarise_components(recs, n_boot=200)["components"]
    top1 = out["altered"]["top1"]
    assert top1["mean"] == 0.75 and top1["n"] == 40 and top1["ci"][0] < 0.75 < top1["ci"][1]
    assert out["altered"]["top2"]["mean"] == 1.0
    assert out["untouched"]["any_differs"]["mean"] == 0.05
    assert out["controls"]["any_differs"]["n"] == 20 and "same-person" not in out
    assert out["impostor"]["any_differs"] == {"mean": 1.0, "ci": [1.0, 1.0], "n": 10}
    assert out["top1_by_region"]["eyes"]["mean"] == 0.75
    assert out["seconds_per_pair"] == pytest.approx((40 * 0.5 + 20 * 0.3 + 10 * 0.4) / 70,
                                                    abs=1e-3)
    table = components_table([{"backbone": "sface", "shape": "box",
                               "components": {"components": out}}])
    assert "| sface | box/ellipse, before alignment | components | 40 | 0.75 [" in table
    assert table.splitlines()[-1].startswith("| chance | | | | 0.25 | 0.50 |")


def test_findings_are_read_from_a_methods_details() -> None:
    from facexplain.benchmarks.planted import component_findings

    @dataclass(frozen=True)
    class Details(MethodDetails):
        components: tuple[ComponentFinding, ...] = ()

    found = Details(components=(ComponentFinding("eyes", 2.0, 1.0, "differs", 1),))
    assert component_findings(found) == [{"component": "eyes", "score": 2.0, "theta": 1.0,
                                          "finding": "differs", "rank": 1, "reason": ""}]
    assert component_findings(MethodDetails()) is None


def _face() -> np.ndarray:
    """68 points of an upright face, eyes 40 px apart, on a 200 px photo."""
    rng = np.random.default_rng(0)
    marks = np.zeros((68, 2))
    marks[0:17] = np.stack([np.linspace(50, 150, 17), 100 + 50 * np.sin(np.linspace(0, np.pi,
                                                                                    17))], 1)
    marks[17:27] = np.stack([np.r_[np.linspace(65, 95, 5), np.linspace(105, 135, 5)],
                             np.full(10, 70.0)], 1)
    marks[27:36] = np.stack([np.r_[np.full(4, 100.0), np.linspace(90, 110, 5)],
                             np.r_[np.linspace(85, 110, 4), np.full(5, 115.0)]], 1)
    turn = np.linspace(0, 6, 6)
    marks[36:42] = np.c_[80 + 8 * np.cos(turn), 85 + 3 * np.sin(turn)]
    marks[42:48] = marks[36:42] + [40, 0]
    marks[48:68] = np.c_[100 + 18 * np.cos(np.linspace(0, 6.2, 20)),
                         135 + 6 * np.sin(np.linspace(0, 6.2, 20))]
    return marks + rng.normal(0, 0.2, marks.shape)


@pytest.mark.parametrize("region", ["eyes", "brows", "nose", "mouth"])
def test_pasted_areas_hold_their_group_and_are_seeded(region: str) -> None:
    marks = _face()
    mask, outline = paste_mask(marks, region, (200, 200), pair_rng(f"a|b:{region}"))
    again, same = paste_mask(marks, region, (200, 200), pair_rng(f"a|b:{region}"))
    assert np.array_equal(mask, again) and outline == same and outline in ("rectangle",
                                                                            "ellipse")
    pts = np.round(marks[list(REGION_POINTS[region])]).astype(int)
    assert mask[pts[:, 1], pts[:, 0]].mean() > 0.8  # around the group (jitter may clip one)
    assert 0.005 < mask.mean() < 0.2
    others = [paste_mask(marks, region, (200, 200), pair_rng(f"pair{k}:{region}"))[0]
              for k in range(6)]
    assert len({m.tobytes() for m in others}) == 6  # jittered from pair to pair


def test_impostors_come_from_every_held_out_fold() -> None:
    pairs = [LfwPair(f"p{f}{i}", 1, f"q{f}{i}", 1, same, f) for f in range(10)
             for i in range(30) for same in (True, False)]
    got = impostor_pairs(pairs, 12)
    assert len(got) == 12 and not any(p.same for p in got)
    assert {p.fold for p in got} == {5, 6, 7, 8, 9}
    assert impostor_pairs(pairs, 0) == []
