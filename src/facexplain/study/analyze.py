"""The paper's analysis of a before/after study: Table I, Figs. 8-10, paired tests; HTML + JSON.

As in the paper (after O'Toole et al.): a choice in the first half of the scale is a "same"
judgment, the rest (including "not sure") "different"; accuracy is per participant over the
pairs they answered; the ROC of a participant ranks pairs by the full choice (Fig. 10). Added:
a paired t-test and a Wilcoxon signed-rank test of after vs before per condition, the mean gain
with its 95% confidence interval, and the explained model's accuracy on the same pairs.

Screening (``study.catch``): catch trials never count in an accuracy, AUC or time; a participant
who finished both rounds is kept when their catch answers pass the rule fixed at creation, and
Table I and the figures use the kept participants only (the report says how many of how many).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from scipy import stats

from facexplain.metrics.verification import auc, roc
from facexplain.study.catch import default_min_correct, passes, rule_text
from facexplain.study.results import ConditionResult, ParticipantResult
from facexplain.study.store import REAL, StudyStore, judged_same, open_study
from facexplain.version import __version__


@dataclass(frozen=True)
class Screening:
    """Who the analysis keeps: ``kept`` of the ``finished`` participants, and the rule."""

    rule: str
    catch_pairs: int
    min_correct: int
    finished: int
    kept: int
    screened: tuple[str, ...]


@dataclass(frozen=True)
class StudyResults:
    """Everything the report draws, read from one study folder."""

    meta: dict[str, str]
    conditions: list[str]
    n_pairs: int  # real pairs (catch trials excluded)
    people: list[ParticipantResult]
    curves: dict[str, list[np.ndarray]]
    table: list[ConditionResult]
    screening: Screening
    model_acc: float


def _nan_to_none(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_nan_to_none(v) for v in x]
    return x


def participant_results(store: StudyStore) -> tuple[list[ParticipantResult],
                                                    dict[str, list[np.ndarray]]]:
    """Per participant: accuracy, AUC and median time of each round over the real pairs, the
    catch answers right, and the screening verdict; and the ROC points."""
    scale = store.scale
    truth = {int(r["idx"]): bool(r["same"]) for r in store.pairs()}
    kinds = store.pair_kinds()
    n_real = sum(k == REAL for k in kinds.values())
    n_catch = len(kinds) - n_real
    min_correct = int(store.meta.get("catch_min_correct", default_min_correct(n_catch)))
    rows: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    catch: dict[str, list[bool]] = {}
    for who, _, phase, pair, choice, ms, _ in store.answers():
        if kinds[pair] == REAL:
            rows.setdefault((who, phase), []).append((pair, choice, ms))
        else:
            catch.setdefault(who, []).append(judged_same(choice, scale) == truth[pair])
    out, curves = [], {}
    for p in store.participants():
        accs, aucs, times, counts = [], [], [], []
        for phase in (1, 2):
            got = rows.get((p.id, phase), [])
            counts.append(len(got))
            if not got:
                accs.append(math.nan)
                aucs.append(math.nan)
                times.append(math.nan)
                continue
            same = np.asarray([truth[i] for i, _, _ in got])
            choices = np.asarray([c for _, c, _ in got])
            said = np.asarray([judged_same(int(c), scale) for c in choices])
            accs.append(float(np.mean(said == same)))
            sameness = (scale + 1 - choices).astype(float)  # 1 = "sure same" ranks highest
            two_kinds = same.any() and not same.all()
            aucs.append(auc(sameness, same) if two_kinds else math.nan)
            if two_kinds:
                curves[f"{p.id}:{phase}"] = list(roc(sameness, same))
            times.append(float(np.median([m for _, _, m in got])))
        right = catch.get(p.id, [])
        finished = min(counts) == n_real and len(right) == 2 * n_catch
        out.append(ParticipantResult(p.id, p.condition, (counts[0], counts[1]),
                                     (accs[0], accs[1]), (aucs[0], aucs[1]),
                                     (times[0], times[1]), sum(right), len(right), finished,
                                     finished and passes(sum(right), min_correct)))
    return out, curves


def screening(people: list[ParticipantResult], n_catch: int, min_correct: int) -> Screening:
    done = [p for p in people if p.finished]
    return Screening(rule_text(n_catch, min_correct), n_catch, min_correct, len(done),
                     sum(p.kept for p in done), tuple(p.id for p in done if not p.kept))


def condition_results(people: list[ParticipantResult], conditions: list[str],
                      n_pairs: int) -> list[ConditionResult]:
    """Table I per condition over the kept participants (finished both rounds, passed the
    screening)."""
    out = []
    for cond in conditions:
        done = [p for p in people if p.condition == cond and p.kept
                and min(p.answered) == n_pairs]
        before = np.asarray([p.accuracy[0] for p in done])
        after = np.asarray([p.accuracy[1] for p in done])
        n = len(done)
        gain = after - before
        if n >= 2:
            se = float(gain.std(ddof=1) / math.sqrt(n))
            half = float(stats.t.ppf(0.975, n - 1)) * se
            t_p = float(stats.ttest_rel(after, before).pvalue) if se > 0 else math.nan
            nonzero = gain[gain != 0]
            w_p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) else math.nan
        else:
            half, t_p, w_p = math.nan, math.nan, math.nan
        mean_gain = float(gain.mean()) if n else math.nan

        def m(a: np.ndarray) -> float:
            return float(np.nanmean(a)) if len(a) else math.nan

        def sd(a: np.ndarray) -> float:
            return float(a.std(ddof=1)) if len(a) >= 2 else math.nan

        out.append(ConditionResult(
            cond, n, m(before), sd(before), m(after), sd(after), mean_gain,
            (mean_gain - half, mean_gain + half), t_p, w_p,
            m(np.asarray([p.auc[0] for p in done])), m(np.asarray([p.auc[1] for p in done])),
            sum(p.condition == cond and p.finished for p in people)))
    return out


def model_accuracy(store: StudyStore) -> float:
    """The explained model's accuracy on the real pairs (catch trials are not a test of it)."""
    kinds = store.pair_kinds()
    rows = [r for r in store.pairs() if kinds[int(r["idx"])] == REAL]
    return float(np.mean([bool(r["model_same"]) == bool(r["same"]) for r in rows]))


def load_results(folder: Path) -> StudyResults:
    """Read a study folder into what the report shows (no files written)."""
    with open_study(folder) as store:
        meta = store.meta
        kinds = store.pair_kinds()
        n_pairs = sum(k == REAL for k in kinds.values())
        n_catch = len(kinds) - n_pairs
        people, curves = participant_results(store)
        model_acc = model_accuracy(store)
    conditions = json.loads(meta.get("conditions", "[]"))
    min_correct = int(meta.get("catch_min_correct", default_min_correct(n_catch)))
    return StudyResults(meta, conditions, n_pairs, people, curves,
                        condition_results(people, conditions, n_pairs),
                        screening(people, n_catch, min_correct), model_acc)


def analyze_study(folder: Path, out: Path, link_token: str | None = None) -> Path:
    """Write ``analysis.json``, the figures and ``analysis.html`` into ``out``; returns the
    HTML's path. ``link_token`` is added to the figure links (the admin page serves them)."""
    from facexplain.study.figures import fig8_bars, fig9_scatter, fig10_roc

    out.mkdir(parents=True, exist_ok=True)
    res = load_results(folder)
    kept = [p for p in res.people if p.kept]
    figures = {
        "fig8": fig8_bars(res.table, res.model_acc, out / "fig8_accuracy.png"),
        "fig9": fig9_scatter(res.people, res.conditions, out / "fig9_before_after.png"),
        "fig10": fig10_roc(kept, res.curves, res.conditions, out / "fig10_roc.png"),
    }
    meta = res.meta
    summary = {
        "study": meta.get("name"), "backbone": meta.get("backbone"), "scale": meta.get("scale"),
        "pairs": res.n_pairs, "model_accuracy": res.model_acc,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "screening": asdict(res.screening),
        "conditions": [asdict(c) for c in res.table],
        "participants": [asdict(p) for p in res.people],
        "figures": {k: v.name for k, v in figures.items()},
    }
    (out / "analysis.json").write_text(json.dumps(_nan_to_none(summary), indent=1) + "\n",
                                       encoding="utf-8")
    env = Environment(loader=PackageLoader("facexplain.study", "templates"),
                      autoescape=select_autoescape(["html"]))
    suffix = f"?token={link_token}" if link_token else ""
    prefix = "/admin/analysis/" if link_token else ""
    html = env.get_template("analysis.html").render(
        summary=summary, table=res.table, model_acc=res.model_acc, people=res.people,
        screening=res.screening, version=__version__,
        figs={k: f"{prefix}{v.name}{suffix}" for k, v in figures.items()}, fmt=_pct,
        pval=_pval, num=_num)
    path = out / "analysis.html"
    path.write_text(html, encoding="utf-8")
    return path


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.2f}%"


def _pval(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.2g}"


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"
