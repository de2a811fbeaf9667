"""The HTML report for one explained pair (jinja2); maps are added as sections of figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from facexplain import __version__
from facexplain.report.images import save_side_by_side
from facexplain.scoring import Calibration
from facexplain.types import FacePair, Verdict


@dataclass(frozen=True)
class Figure:
    src: str
    caption: str


@dataclass(frozen=True)
class Section:
    title: str
    text: str = ""
    figures: tuple[Figure, ...] = field(default_factory=tuple)


def verdict_text(verdict: Verdict) -> str:
    word = "Same person" if verdict.same else "Different people"
    return f"{word} ({100 * verdict.confidence:.1f}% confidence)"


def write_report(
    out_dir: Path, pair: FacePair, verdict: Verdict, calibration: Calibration,
    template_name: str, sections: tuple[Section, ...] = (),
) -> Path:
    """Write ``report.html`` (and the aligned-faces picture) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = save_side_by_side(pair.a.pixels, pair.b.pixels, out_dir / "faces.png")
    env = Environment(
        loader=PackageLoader("facexplain.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    html = env.get_template("report.html").render(
        verdict=verdict,
        verdict_text=verdict_text(verdict),
        calibration_note=f"calibrated on LFW {calibration.date}",
        faces_png=faces.name,
        template=template_name,
        sections=sections,
        version=__version__,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
