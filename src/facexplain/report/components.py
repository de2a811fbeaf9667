"""The "Facial components" part of a report: a sentence, a table and outlines on both faces.

Why it leads the report: an operator compares faces component by component ("the eyebrows
differ; the nose is consistent"), so the component findings are what a reader acts on and the
pixel maps below are the evidence for them. Nothing here names the method that made the
findings: any method whose details carry ``components`` (``ComponentFinding`` rows, rank 1
first) is shown, so the report layer never imports ``methods``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from facexplain.types import FINDINGS, ComponentFinding, Figure, MethodDetails

if TYPE_CHECKING:
    from facexplain.results import PairExplanation

# How a component is named in a sentence, and whether it takes a plural verb.
WORDS = {"forehead": ("the forehead", False), "eyebrows": ("the eyebrows", True),
         "eyes": ("the eyes", True), "nose": ("the nose", False),
         "cheeks": ("the cheeks", True), "mouth": ("the mouth", False),
         "jaw": ("the jaw line", False)}
PICTURE = "components.png"
CAPTION = "Facial components on both aligned faces"
READING_RAW = ("Each component's outline on both faces, coloured by its bare score (no Θ_c is "
               "stored for this model): darker red moves the similarity more. The numbers on "
               "face A are the ranks of the table.")
READING = ("Each component's outline on both faces, coloured by its score over its own Θ_c: "
           "blue below 1 (consistent: within what two photos of one person differ by), red "
           "above 1 (differs); grey hatched: not assessable. The numbers on face A are the "
           "ranks of the table.")


@dataclass(frozen=True)
class ComponentRow:
    """One row of the table, as text (the same on the report, the web page and the study)."""

    component: str
    score: str
    theta: str
    ratio: str
    finding: str
    rank: str
    reason: str


@dataclass(frozen=True)
class ComponentsView:
    """What the report's "Facial components" section shows."""

    sentence: str
    rows: tuple[ComponentRow, ...]
    figure: Figure | None = None
    note: str = ""  # a reason every not-assessable row shares, said once under the table


def make_view(findings: Sequence[ComponentFinding], population: str,
              figure: Figure | None) -> ComponentsView:
    """Sentence, rows and picture; a reason shared by several not-assessable rows (no Θ_c
    stored) is said once, not on every row."""
    table = rows(findings)
    reasons = {r.reason for r in table if r.finding == "not assessable"}
    note = ""
    if len(reasons) == 1 and sum(r.finding == "not assessable" for r in table) > 1:
        note = reasons.pop()
        table = tuple(replace(r, reason="") for r in table)
    if figure is not None and not any(ratio(f) is not None for f in findings):
        figure = replace(figure, reading=READING_RAW)
    return ComponentsView(sentence(findings, population), table, figure, note)


def findings_in(meta: MethodDetails) -> tuple[ComponentFinding, ...] | None:
    """A method's component findings, when its details carry some (None: a map method)."""
    found = getattr(meta, "components", None)
    if isinstance(found, tuple | list) and found and all(
            isinstance(f, ComponentFinding) for f in found):
        return tuple(found)
    return None


def findings_of(explanation: PairExplanation) -> tuple[ComponentFinding, ...] | None:
    """The component findings of the first method that made some (None: no such method ran)."""
    for result in explanation.results:
        found = findings_in(result.explanation.meta)
        if found is not None:
            return found
    return None


def finding_from_dict(d: Mapping[str, object]) -> ComponentFinding:
    """A finding back from ``explanation.json`` (the web page reads the stored result)."""
    def number(key: str) -> float | None:
        v = d.get(key)
        return float(v) if isinstance(v, int | float) else None

    rank = d.get("rank")
    return ComponentFinding(str(d["component"]), number("score"), number("theta"),
                            str(d["finding"]), rank if isinstance(rank, int) else None,
                            str(d.get("reason") or ""))


def ratio(f: ComponentFinding) -> float | None:
    """Score over Θ_c (1: as large as the component gets between two photos of one person)."""
    if f.score is None or f.theta is None or f.theta <= 0:
        return None
    return f.score / f.theta


def _list(names: Sequence[str]) -> str:
    words = [WORDS.get(n, (n, False))[0] for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plural(names: Sequence[str]) -> bool:
    return len(names) > 1 or WORDS.get(names[0], ("", False))[1]


def sentence(findings: Sequence[ComponentFinding], population: str = "LFW") -> str:
    """The findings in plain words, e.g. "The eyebrows differ more than they do between two
    photos of one person on LFW; the nose is consistent."."""
    scored = [f.component for f in findings if f.score is not None]
    if scored and all(f.theta is None for f in findings):
        return (f"No Θ_c is stored for this model, so no component is judged; ranked by score, "
                f"{_list(scored[:1])} {'move' if _plural(scored[:1]) else 'moves'} the "
                f"similarity most.")
    by = {k: [f.component for f in findings if f.finding == k] for k in FINDINGS}
    differ, same, unknown = by["differs"], by["consistent"], by["not assessable"]
    parts = []
    if differ:
        plural = _plural(differ)
        parts.append(f"{_list(differ)} {'differ' if plural else 'differs'} more than "
                     f"{'they do' if plural else 'it does'} between two photos of one person "
                     f"on {population}")
    else:
        parts.append(f"no component differs more than it does between two photos of one "
                     f"person on {population}")
    if same:
        parts.append(f"{_list(same)} {'are' if _plural(same) else 'is'} consistent")
    if unknown:
        parts.append(f"{_list(unknown)} could not be assessed")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def rows(findings: Sequence[ComponentFinding]) -> tuple[ComponentRow, ...]:
    """The table's rows in the findings' order (rank 1 first, not assessable last)."""
    out = []
    for f in findings:
        r = ratio(f)
        out.append(ComponentRow(
            f.component, "—" if f.score is None else f"{f.score:.4f}",
            "—" if f.theta is None else f"{f.theta:.4f}", "—" if r is None else f"{r:.2f}",
            f.finding, "—" if f.rank is None else str(f.rank),
            f.reason if f.finding == "not assessable" else ""))
    return tuple(out)


def component_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Bool (size, size) masks of the components on one aligned crop, from its 68 landmarks:
    the very masks the comparison scores (``datasets.face_components``)."""
    from facexplain.datasets.face_components import component_masks as seven

    return seven(landmarks, size)


def face_landmarks(explanation: PairExplanation) -> np.ndarray:
    """(2, 68, 2) landmarks of the two aligned faces: the method's own when its details carry
    them (the outlines then match what it scored), else located again on the crops."""
    for result in explanation.results:
        marks = getattr(result.explanation.meta, "landmarks", None)
        if marks is not None and np.shape(marks) == (2, 68, 2):
            return np.asarray(marks, dtype=np.float64)
    from facexplain.align.landmarks68 import landmarks68

    return landmarks68(explanation.faces.detach().float()).numpy().astype(np.float64)


def save_component_picture(faces: torch.Tensor, landmarks: np.ndarray,
                           findings: Sequence[ComponentFinding], path: Path) -> Path:
    """Both faces with each component outlined and tinted by score / Θ_c (diverging around 1),
    not-assessable components grey and hatched; a colour bar and a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, Normalize, TwoSlopeNorm
    from matplotlib.patches import Patch

    judged = any(ratio(f) is not None for f in findings)

    def value(f: ComponentFinding) -> float | None:  # no Θ_c stored: the bare score
        return ratio(f) if judged else f.score

    values = [v for v in (value(f) for f in findings) if v is not None]
    norm: Normalize
    if judged:
        norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(2.0, *values))
        cmap, label = plt.get_cmap("RdBu_r"), "score / Θ_c  (above 1: differs)"
    else:
        norm = Normalize(vmin=min(0.0, *values) if values else 0.0,
                         vmax=max(1e-6, *values) if values else 1.0)
        cmap, label = plt.get_cmap("Reds"), "score (no Θ_c stored: not judged)"
    size = int(faces.shape[-1])
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 3.5), dpi=130, layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 0.05]})
    for i in range(2):
        ax = axes[i]
        ax.imshow(faces[i].detach().clamp(0, 255).permute(1, 2, 0).cpu().numpy()
                  .astype(np.uint8))
        masks = component_masks(landmarks[i], size)
        for f in findings:
            mask = masks.get(f.component)
            if mask is None or not mask.any():
                continue
            grid = mask.astype(float)
            r = value(f)
            if r is None:
                ax.contourf(grid, levels=[0.5, 1.5], colors="none", hatches=["////"])
                ax.contour(grid, levels=[0.5], colors=["#777777"], linewidths=1.2)
                continue
            colour = cmap(norm(r))
            ax.imshow(np.where(mask, 1.0, np.nan), cmap=ListedColormap([colour]), alpha=0.4,
                      vmin=0, vmax=1, interpolation="nearest")
            ax.contour(grid, levels=[0.5], colors=["#222222"], linewidths=2.8)  # a halo, so
            ax.contour(grid, levels=[0.5], colors=[colour], linewidths=1.6)  # pale ones show
            if i == 0 and f.rank is not None:
                ys, xs = np.nonzero(mask)
                ax.text(float(xs.max()) + 1, float(ys.min()), str(f.rank), fontsize=7,
                        color="white", ha="left", va="bottom",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "#222222", "lw": 0})
        ax.set_axis_off()
        ax.set_title("face A" if i == 0 else "face B", fontsize=8)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=axes[2])
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    if any(value(f) is None for f in findings):
        fig.legend(handles=[Patch(facecolor="none", edgecolor="#777777", hatch="////",
                                  label="not assessable")], loc="outside lower center",
                   fontsize=7, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def component_view(explanation: PairExplanation, out_dir: Path) -> ComponentsView | None:
    """The section's sentence, rows and picture (written to ``out_dir``); None when no method
    of the explanation compared components."""
    findings = findings_of(explanation)
    if findings is None:
        return None
    meta = next(r.explanation.meta for r in explanation.results
                if findings_in(r.explanation.meta) is not None)
    population = getattr(meta, "population", None)
    words = "LFW" if not isinstance(population, str) or population.lower() == "lfw" \
        else population
    picture = save_component_picture(explanation.faces, face_landmarks(explanation), findings,
                                     out_dir / PICTURE)
    return make_view(findings, words, Figure(picture.name, CAPTION, READING))


def view_from_json(summary: Mapping[str, object]) -> ComponentsView | None:
    """The section again from a stored ``explanation.json`` (its ``components`` key), for a
    page that shows a finished result without the tensors (the web job page)."""
    stored = summary.get("components")
    if not isinstance(stored, list) or not stored:
        return None
    findings = [finding_from_dict(d) for d in stored if isinstance(d, dict)]
    methods = summary.get("methods")
    population = None
    if isinstance(methods, dict):
        for entry in methods.values():
            details = entry.get("details") if isinstance(entry, dict) else None
            if isinstance(details, dict) and isinstance(details.get("population"), str):
                population = details["population"]
                break
    words = "LFW" if population is None or population.lower() == "lfw" else population
    return make_view(findings, words, Figure(PICTURE, CAPTION, READING))
