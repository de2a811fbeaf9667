"""The report leads with the facial components (sentence, table, outlines on both faces) when an
explanation compares components, on a real LFW pair and the real sface model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facexplain.api import explain_pair
from facexplain.method_info import ExplainOptions
from facexplain.pipeline import FacePipeline
from facexplain.report.components import (
    component_masks,
    finding_from_dict,
    make_view,
    rows,
    save_component_picture,
    sentence,
)
from facexplain.report.html import write_explanation
from facexplain.types import COMPONENTS, ComponentFinding
from tests.component_standin import FINDINGS, component_method  # noqa: F401
from tests.conftest import lfw_image

FAST = ExplainOptions(values={"patch": 32, "stride": 16})


@pytest.fixture(scope="module")
def sface() -> FacePipeline:
    return FacePipeline("sface")


def test_sentence_says_what_differs_what_is_consistent_and_what_was_not_assessed() -> None:
    text = sentence(FINDINGS)
    assert text.startswith("The eyebrows and the eyes differ more than they do between two "
                           "photos of one person on LFW; ")
    assert "the nose, the cheeks, the jaw line and the forehead are consistent" in text
    assert text.endswith("the mouth could not be assessed.")
    one = [ComponentFinding("nose", 0.1, 0.05, "differs", 1),
           ComponentFinding("mouth", 0.01, 0.05, "consistent", 2)]
    assert sentence(one) == ("The nose differs more than it does between two photos of one "
                             "person on LFW; the mouth is consistent.")
    none = [ComponentFinding("eyes", 0.01, 0.05, "consistent", 1)]
    assert sentence(none).startswith("No component differs")


def test_rows_keep_the_order_and_give_the_reason_only_when_not_assessable() -> None:
    table = rows(FINDINGS)
    assert [r.component for r in table] == [f.component for f in FINDINGS]
    assert (table[0].score, table[0].theta, table[0].ratio, table[0].rank) == (
        "0.0810", "0.0400", "2.02", "1")
    assert table[-1].score == "—" and table[-1].reason == "covered by a hand"
    assert all(not r.reason for r in table[:-1])
    assert finding_from_dict(FINDINGS[-1].to_dict()) == FINDINGS[-1]
    assert finding_from_dict(FINDINGS[0].to_dict()) == FINDINGS[0]


def test_component_picture_outlines_each_component_on_both_real_faces(
        sface: FacePipeline, tmp_path: Path) -> None:
    from facexplain.align.landmarks68 import landmarks68

    pair = sface.pair(lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1))
    marks = landmarks68(pair.tensor).numpy()
    masks = component_masks(marks[0], 112)
    assert set(masks) == set(COMPONENTS)
    assert all(m.any() for m in masks.values())
    path = save_component_picture(pair.tensor, marks, FINDINGS, tmp_path / "c.png")
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    assert im.width > 600
    reddish = (pixels[..., 0] > 150) & (pixels[..., 2] < 110) & (pixels[..., 1] < 110)
    bluish = (pixels[..., 2] > 150) & (pixels[..., 0] < 110)
    assert reddish.sum() > 50 and bluish.sum() > 50  # differs in red, consistent in blue


@pytest.mark.long
def test_report_leads_with_the_components_above_the_pixel_maps(
        sface: FacePipeline, tmp_path: Path, component_method: str) -> None:  # noqa: F811
    result = explain_pair(lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1),
                          [component_method, "occlusion"], "sface", FAST, pipeline=sface)
    html = write_explanation(result, tmp_path).read_text()
    assert (tmp_path / "components.png").is_file()
    start = html.index("<h2>Facial components</h2>")
    assert start < html.index("Pairwise occlusion") and start < html.index("aligned faces")
    table = html[start:html.index("</table>", start)]
    assert "score / Θ_c" in table and table.count("<tr class=") >= 4
    assert "differ more than" in html or "No component differs" in html
    assert 'src="components.png"' in html


def test_a_model_without_stored_theta_is_ranked_not_judged(tmp_path: Path,
                                                           sface: FacePipeline) -> None:
    from facexplain.align.landmarks68 import landmarks68

    why = "not calibrated"
    raw = [ComponentFinding("eyes", 0.05, None, "not assessable", 1, why),
           ComponentFinding("nose", 0.01, None, "not assessable", 2, why)]
    assert sentence(raw) == ("No Θ_c is stored for this model, so no component is judged; "
                             "ranked by score, the eyes move the similarity most.")
    view = make_view(raw, "LFW", None)
    assert view.note == why and not any(r.reason for r in view.rows)  # said once, not per row
    assert make_view(FINDINGS, "LFW", None).rows[-1].reason == "covered by a hand"
    pair = sface.pair(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2))
    path = save_component_picture(pair.tensor, landmarks68(pair.tensor).numpy(), raw,
                                  tmp_path / "raw.png")
    assert path.stat().st_size > 10_000

