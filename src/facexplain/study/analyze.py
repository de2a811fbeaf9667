"""The paper's analysis of a before/after study: Table I, Figs. 8-10, paired tests; HTML + JSON.

As in the paper (after O'Toole et al.): a choice in the first half of the scale is a "same"
judgment, the rest (including "not sure") "different"; accuracy is per participant over the
pairs they answered; the ROC of a participant ranks pairs by the full choice (Fig. 10). Added:
a paired t-test and a Wilcoxon signed-rank test of after vs before per condition, the mean gain
with its 95% confidence interval, and the explained model's accuracy on the same pairs.
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
from facexplain.study.store import StudyStore, judged_same, open_study
from facexplain.version import __version__


@dataclass(frozen=True)
class ParticipantResult:
    id: str
    condition: str
    answered: tuple[int, int]
    accuracy: tuple[float, float]  # before, after
    auc: tuple[float, float]
    median_ms: tuple[float, float]


@dataclass(frozen=True)
class ConditionResult:
    condition: str
    n: int
    before_mean: float
    before_std: float
    after_mean: float
    after_std: float
    gain_mean: float
    gain_ci95: tuple[float, float]
    t_p: float
    wilcoxon_p: float
    auc_before: float
    auc_after: float


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
    """Per participant: accuracy, AUC and median time of each round; and the ROC points."""
    scale = store.scale
    truth = {int(r["idx"]): bool(r["same"]) for r in store.pairs()}
    rows: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    for who, _, phase, pair, choice, ms, _ in store.answers():
        rows.setdefault((who, phase), []).append((pair, choice, ms))
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
        out.append(ParticipantResult(p.id, p.condition, (counts[0], counts[1]),
                                     (accs[0], accs[1]), (aucs[0], aucs[1]),
                                     (times[0], times[1])))
    return out, curves


def condition_results(people: list[ParticipantResult], conditions: list[str],
                      n_pairs: int) -> list[ConditionResult]:
    """Table I per condition over participants who finished both rounds."""
    out = []
    for cond in conditions:
        done = [p for p in people if p.condition == cond and min(p.answered) == n_pairs]
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
            m(np.asarray([p.auc[0] for p in done])), m(np.asarray([p.auc[1] for p in done]))))
    return out


def model_accuracy(store: StudyStore) -> float:
    rows = store.pairs()
    return float(np.mean([bool(r["model_same"]) == bool(r["same"]) for r in rows]))


def analyze_study(folder: Path, out: Path, link_token: str | None = None) -> Path:
    """Write ``analysis.json``, the figures and ``analysis.html`` into ``out``; returns the
    HTML's path. ``link_token`` is added to the figure links (the admin page serves them)."""
    from facexplain.study.figures import fig8_bars, fig9_scatter, fig10_roc

    out.mkdir(parents=True, exist_ok=True)
    with open_study(folder) as store:
        meta = store.meta
        conditions = json.loads(meta.get("conditions", "[]"))
        n_pairs = len(store.pairs())
        people, curves = participant_results(store)
        model_acc = model_accuracy(store)
    table = condition_results(people, conditions, n_pairs)
    figures = {
        "fig8": fig8_bars(table, model_acc, out / "fig8_accuracy.png"),
        "fig9": fig9_scatter(people, conditions, out / "fig9_before_after.png"),
        "fig10": fig10_roc(people, curves, conditions, out / "fig10_roc.png"),
    }
    summary = {
        "study": meta.get("name"), "backbone": meta.get("backbone"), "scale": meta.get("scale"),
        "pairs": n_pairs, "model_accuracy": model_acc,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [asdict(c) for c in table],
        "participants": [asdict(p) for p in people],
        "figures": {k: v.name for k, v in figures.items()},
    }
    (out / "analysis.json").write_text(json.dumps(_nan_to_none(summary), indent=1) + "\n",
                                       encoding="utf-8")
    env = Environment(loader=PackageLoader("facexplain.study", "templates"),
                      autoescape=select_autoescape(["html"]))
    suffix = f"?token={link_token}" if link_token else ""
    prefix = "/admin/analysis/" if link_token else ""
    html = env.get_template("analysis.html").render(
        summary=summary, table=table, model_acc=model_acc, people=people, version=__version__,
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
