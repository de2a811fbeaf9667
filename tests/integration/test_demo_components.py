"""`make demo` leads with the facial components: the plain `facexplain explain` runs the
component comparison by default, on a real LFW pair and the real sface model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import lfw_image


@pytest.mark.long
def test_plain_explain_as_make_demo_runs_it_leads_with_the_components(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`facexplain explain A B --out DIR` (what `make demo` runs, here at a coarse occlusion):
    the default methods include the component comparison, whose table leads the report."""
    import json

    from tests.integration.test_cli import run_cli

    code, _, err = run_cli(["explain", str(lfw_image("Abdel_Madi_Shabneh", 1)),
                            str(lfw_image("Dean_Barker", 1)), "--out", str(tmp_path),
                            "--patch", "32", "--stride", "16"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "explanation.json").read_text())
    assert set(summary["methods"]) == {"components", "occlusion"}
    assert [c["component"] for c in summary["components"]]
    html = (tmp_path / "report.html").read_text()
    assert html.index("<h2>Facial components</h2>") < html.index("Pairwise occlusion")
