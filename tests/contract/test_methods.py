"""The same checks for every registered explanation method (one test template, kornia-style).

On a real LFW pair with the real default backbone: every map the method declares comes back
with shape (2, H, W) and nothing undeclared; the input pair is not modified; two runs give the
same maps; swapping the faces swaps the per-face maps (and leaves a pairwise map as it is);
the explained score is the verdict's similarity (xCos explains its own score, <S, W>).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods.registry import all_methods
from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

# small settings for the slow methods: 64 samples per face for the sampling ones, two
# coarse patch sizes for x-face occlusion
FAST = ExplainOptions(patch=32, stride=16, ig_steps=8, samples=64, xface_patches=(28, 56),
                      xface_stride=14)
METHODS = list(all_methods().values())


@pytest.fixture(scope="module")
def pipe(contract_home: Path) -> FacePipeline:
    return FacePipeline("sface")


@pytest.fixture(scope="module")
def pair(pipe: FacePipeline) -> torch.Tensor:
    return pipe.pair(lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)).tensor


# FGGB's 2N backward passes, three times over, take over a minute on two cores: `make test-long`.
@pytest.mark.parametrize("info", [pytest.param(m, marks=pytest.mark.long) if m.name == "fggb"
                                  else m for m in METHODS], ids=[m.name for m in METHODS])
def test_method_contract(info: MethodInfo, pipe: FacePipeline, pair: torch.Tensor) -> None:
    if info.prepare is not None:
        info.prepare("sface", False)
    explainer = info.build(pipe.scorer, FAST)
    before = pair.clone()
    first = explainer.explain(pair)
    assert torch.equal(pair, before), "the method modified its input"
    declared = {m.name for m in info.maps}
    assert set(first.maps) <= declared, f"undeclared maps {set(first.maps) - declared}"
    assert first.method == info.name
    for name, values in first.maps.items():
        assert values.shape == (2, 112, 112), name
        assert torch.isfinite(values).all(), name
    again = explainer.explain(pair)
    for name in first.maps:
        assert torch.allclose(first.maps[name], again.maps[name], atol=1e-6), f"{name} varies"
    swapped = explainer.explain(pair.flip(0))
    for name, values in first.maps.items():
        expected = values if info.pairwise else values.flip(0)
        scale = float(values.abs().max()) + 1e-12
        assert torch.allclose(swapped.maps[name], expected, atol=2e-3 * scale), (
            f"{name}: swapping the faces does not swap the maps")
    if info.name not in ("xcos", "parts"):  # these explain their head's own score
        assert first.score == pytest.approx(pipe.scorer.similarity(pair), abs=1e-5)
    assert first.meta.seconds is None or first.meta.seconds >= 0


def test_clean_pair_is_embedded_once_across_methods(pipe: FacePipeline,
                                                    pair: torch.Tensor) -> None:
    """Verdict, occlusion and the gradient methods share the scorer's clean embedding."""
    from facexplain.methods.registry import get_method

    scorer = pipe.scorer
    scorer.similarity(pair)
    before = scorer.clean_embeddings
    for name in ("occlusion", "saliency", "gradcam"):
        get_method(name).build(scorer, FAST).explain(pair)
    assert scorer.clean_embeddings == before
