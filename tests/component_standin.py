"""The component comparison for the front ends' tests: the real method when it is registered,
else a stand-in method whose details carry a fixed list of findings (so the report, the web
page and the study can be tested before, and independently of, the method's numbers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch

from facexplain.explain.base import Explainer, ExplanationMaps
from facexplain.method_info import MethodInfo
from facexplain.methods import registry
from facexplain.types import ComponentFinding, MethodDetails

REAL = "components"
STANDIN = "components-standin"
FINDINGS = (
    ComponentFinding("eyebrows", 0.081, 0.040, "differs", 1),
    ComponentFinding("eyes", 0.052, 0.045, "differs", 2),
    ComponentFinding("nose", 0.020, 0.050, "consistent", 3),
    ComponentFinding("cheeks", 0.011, 0.030, "consistent", 4),
    ComponentFinding("jaw", 0.004, 0.025, "consistent", 5),
    ComponentFinding("forehead", 0.002, 0.020, "consistent", 6),
    ComponentFinding("mouth", None, 0.035, "not assessable", None, "covered by a hand"),
)


@dataclass(frozen=True, kw_only=True)
class StandinDetails(MethodDetails):
    components: tuple[ComponentFinding, ...] = ()


class Standin(Explainer):
    name = STANDIN

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        with torch.no_grad():
            score = float(self.score_fn(pair[:1], pair[1:])[0])
        return ExplanationMaps(STANDIN, {}, score, StandinDetails(components=FINDINGS))


STANDIN_INFO = MethodInfo(
    name=STANDIN, title="Component comparison (stand-in)", family="black-box",
    description="Fixed component findings, for testing the front ends.", maps=(),
    build=lambda scorer, options: Standin(scorer), rankings=(), in_all=False)


@pytest.fixture
def component_method() -> Iterator[str]:
    """The name of the method to ask for: ``components`` once it exists, else the stand-in."""
    if REAL in registry.all_methods():
        yield REAL
        return
    registry.register_method(STANDIN_INFO)
    try:
        yield STANDIN
    finally:
        registry.unregister_method(STANDIN)
