"""Front ends decide nothing themselves: no front end compares a similarity with a threshold,
asks a calibration for a confidence or a selective rule; they call the use cases (``api``), so
every verdict comes from ``scoring.Calibration.decide`` through ``api.verdict_for_pair``.

The behaviour is checked on real pairs in ``tests/integration/test_batch.py`` (batch verify,
``/api/v1/verify`` and ``verify --json`` agree field by field); this test catches the next
front end that starts to re-implement it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "facexplain"
FRONT_ENDS = ("cli", "web", "batch", "study")
DECIDING = re.compile(r"\.confidence\(|\.decide\(|\.selective_rule\(|\.probability_same\("
                      r"|[<>]=?\s*[\w.\[\]\"']*threshold\b|threshold\b[\w.\[\]\"']*\s*[<>]=?")


def deciding_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if DECIDING.search(line) and not line.strip().startswith("#")]


def test_the_check_finds_a_verdict_made_by_hand() -> None:
    assert deciding_lines('verdict = "same" if sim >= cal.threshold else "different"')
    assert deciding_lines("conf = calibration.confidence(sim)")
    assert not deciding_lines("verdict = verdict_for_pair(pipe, pair, a, b, options)")


@pytest.mark.parametrize("package", FRONT_ENDS)
def test_front_ends_call_the_use_case_for_a_verdict(package: str) -> None:
    found = {str(p.relative_to(SRC)): lines for p in sorted((SRC / package).rglob("*.py"))
             if (lines := deciding_lines(p.read_text(encoding="utf-8")))}
    assert found == {}
