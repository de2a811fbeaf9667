"""The HTML report for one explained pair (jinja2); maps are added as sections of figures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape

from facexplain.confidence.likelihood import evidence_lines, lr_text
from facexplain.progress import check_in
from facexplain.quality.text import quality_lines
from facexplain.report.components import ComponentsView, component_view, findings_of
from facexplain.report.images import save_side_by_side
from facexplain.results import Section
from facexplain.scoring import Calibration, confidence_text
from facexplain.types import FacePair, Verdict
from facexplain.version import __version__

if TYPE_CHECKING:
    from facexplain.results import PairExplanation


def verdict_text(verdict: Verdict) -> str:
    word = {"same": "Same person", "different": "Different people",
            "not sure": "Not sure"}[verdict.answer]
    return f"{word} ({confidence_text(verdict.confidence)} confidence)"


def confidence_facts(verdict: Verdict, calibration: Calibration) -> list[str]:
    """The confidence with what it is worth: its calibration population and held-out quality,
    the photos that are outside that population, and the selective rule when one was asked."""
    if calibration.provisional:
        facts = [f"{calibration.command}."]
    else:
        kind = (calibration.calibrator or {}).get("kind", "logistic")
        facts = [f"P(same) from a {kind} fit on {calibration.population} ({calibration.date})."]
        for pop, words in (("lfw", "held out on LFW folds"),
                           ("lookalike", "on look-alike pairs")):
            q = (calibration.heldout or {}).get(pop)
            if q:
                facts.append(f"Calibration error (ECE) {words}: {q['ece']:.4f} "
                             f"[95% CI {q['ece_ci'][0]:.4f}-{q['ece_ci'][1]:.4f}], "
                             f"{q['n_pairs']:,} pairs.")
        if calibration.heldout is None:
            facts.append("Its held-out quality was not measured (`facexplain benchmark "
                         "calibration --write-calibration`).")
    if verdict.log10_lr is not None:
        facts.append(f"The likelihood ratio is prior-free: {evidence_lines(verdict)[0]}. The "
                     "confidence above assumes LFW's even odds; state your own prior "
                     "(--prior-odds) for P(same).")
    facts += [f"Out of scope: {n}; the confidence may not hold." for n in verdict.scope]
    facts += [f"Out of scope: {line}." for line in quality_lines(verdict.quality)
              if "outside" in line]
    if verdict.rule:
        facts.append(f"Selective verdict at max error {verdict.max_error:g}: {verdict.rule}.")
    return facts


def write_report(
    out_dir: Path, pair: FacePair, verdict: Verdict, calibration: Calibration,
    template_name: str, sections: tuple[Section, ...] = (),
    components: ComponentsView | None = None,
) -> Path:
    """Write ``report.html`` (and the aligned-faces picture) into ``out_dir``; the facial
    components, when given, lead it (above the pixel maps)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = save_side_by_side(pair.a.pixels, pair.b.pixels, out_dir / "faces.png")
    env = Environment(
        loader=PackageLoader("facexplain.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    html = env.get_template("report.html").render(
        verdict=verdict,
        verdict_text=verdict_text(verdict),
        calibration_note=("provisional: not calibrated for these weights"
                          if calibration.provisional else f"calibrated on LFW {calibration.date}"),
        confidence=confidence_text(verdict.confidence),
        confidence_facts=confidence_facts(verdict, calibration),
        lr_text="" if verdict.log10_lr is None else lr_text(verdict.log10_lr),
        posterior_text=(evidence_lines(verdict)[1:] or [""])[0],
        quality_lines=quality_lines(verdict.quality),
        faces_png=faces.name,
        template=template_name,
        sections=sections,
        components=components,
        version=__version__,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def write_explanation(explanation: PairExplanation, out_dir: Path) -> Path:
    """Everything of one explained pair into ``out_dir``: per method its raw maps (.npy) and
    pictures, ``explanation.json`` (verdict, scores, map files, method details) and
    ``report.html``. Returns the report's path."""
    from facexplain.report.sections import render_method

    out_dir.mkdir(parents=True, exist_ok=True)
    faces = explanation.faces
    sections = []
    methods: dict[str, object] = {}
    for result in explanation.results:
        info, maps = result.method, result.explanation
        check_in(f"drawing the report: {info.name}")  # a web job may stop between methods
        sections.append(render_method(info, maps, faces, out_dir, explanation.spec.name,
                                      explanation.weights))
        methods[info.name] = {
            "title": info.title, "family": info.family, "score": maps.score,
            "maps": [{"name": m.name, "file": f"{info.name}_{m.name}.npy",
                      "signed": m.spec.signed, "frame": m.spec.frame, "caption": m.spec.caption}
                     for m in result.maps],
            "details": {k: v for k, v in maps.meta.to_json().items()
                        if isinstance(v, str | int | float | bool | type(None))},
        }
    summary = {"verdict": explanation.verdict.to_dict(), "backbone": explanation.spec.name,
               "template": explanation.spec.template, "methods": methods,
               "skipped": [{"method": n, "why": why} for n, why in explanation.skipped]}
    found = findings_of(explanation)  # the component comparison, ordered (rank 1 first)
    if found is not None:
        summary["components"] = [f.to_dict() for f in found]
    (out_dir / "explanation.json").write_text(json.dumps(summary, indent=2) + "\n",
                                              encoding="utf-8")
    if explanation.skipped:
        sections.append(Section("Methods not run", "--method all left out: " + "; ".join(
            f"{name} ({why})" for name, why in explanation.skipped) + "."))
    return write_report(out_dir, explanation.pair, explanation.verdict, explanation.calibration,
                        explanation.spec.template, tuple(sections),
                        component_view(explanation, out_dir))
