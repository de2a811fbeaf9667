"""The part-filter method and analysis on real LFW crops with the real sface backbone.

The heads are random (seeded): these tests check the arithmetic (shares, 1 - cos), shapes,
the registry wiring and the error for a missing head, not what a trained head has learnt.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain import settings
from facexplain.heads.parts import (
    PartsHead,
    PartsHeadConfig,
    checkpoint_path,
    nodes_for,
    save_head,
)
from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

N_FILTERS = 32


def random_head(seed: int = 0) -> PartsHead:
    torch.manual_seed(seed)
    cfg = PartsHeadConfig(backbone="sface", nodes=nodes_for("sface"),
                          in_channels=(256, 512, 1024), grid=14, late_size=7,
                          n_filters=N_FILTERS)
    return PartsHead(cfg).eval()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model home linking the real model files, without any part-filter head."""
    real = settings.current().home
    root = tmp_path_factory.mktemp("home")
    for entry in real.iterdir():
        if entry.is_dir() and entry.name not in ("parts", "_downloads", "records"):
            (root / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, root / entry.name)
    mp = pytest.MonkeyPatch()
    mp.setenv(settings.HOME_ENV, str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def pipe(home: Path) -> FacePipeline:
    return FacePipeline("sface", root=home)


@pytest.fixture(scope="module")
def pair(pipe: FacePipeline) -> torch.Tensor:
    return pipe.pair(lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)).tensor


def test_shares_sum_to_one_and_terms_reproduce_the_head_cosine(pipe: FacePipeline,
                                                                  pair: torch.Tensor) -> None:
    from facexplain.analysis.filters import filter_responses
    from facexplain.explain.parts import PartsDetails, PartsExplainer

    head = random_head()
    result = PartsExplainer(pipe.model, head, top_k=5).explain(pair)
    d = result.meta
    assert isinstance(d, PartsDetails)
    assert float(d.shares.sum()) == pytest.approx(1.0, abs=1e-6)
    f = filter_responses(head, pipe.model, pair).features
    cos = float(torch.nn.functional.cosine_similarity(f[0:1], f[1:2]))
    assert 1 - float(d.terms.double().sum()) == pytest.approx(cos, abs=1e-5)
    assert result.score == pytest.approx(cos, abs=1e-5)
    assert len(d.top) == 5 and d.responses.shape == (2, 5, 14, 14)
    assert list(d.shares[list(d.top)]) == sorted(d.shares[list(d.top)], reverse=True)
    assert d.part(d.top[0]) == "part unknown"
    assert result.maps["difference"].shape == (2, 112, 112)
    assert float(result.maps["difference"].min()) >= 0


def test_filter_responses_and_occlusion_sensitivity_on_real_faces(pipe: FacePipeline,
                                                                  pair: torch.Tensor) -> None:
    from facexplain.analysis.filters import filter_responses, occlusion_sensitivity, part_rectangles
    from facexplain.heads.parts_readout import peak_locations

    head = random_head()
    r = filter_responses(head, pipe.model, pair, batch=1)
    assert r.psi.shape == r.smoothed.shape == (2, N_FILTERS, 14, 14)
    assert r.features.shape == (2, N_FILTERS)
    pos, neg = peak_locations(r.smoothed)
    assert pos.shape == (2, N_FILTERS, 2) and (pos != neg).any(axis=2).all()
    template = pipe.spec.alignment.as_array()
    nose = part_rectangles(template, 112)["nose"]
    diff = occlusion_sensitivity(head, pipe.model, pair, np.stack([template, template]), nose)
    assert diff.shape == (N_FILTERS,) and float(diff.min()) >= 0 and float(diff.max()) > 0


def test_registered_method_needs_a_head_then_gives_maps_figure_and_note(
        home: Path, pipe: FacePipeline, pair: torch.Tensor, tmp_path: Path) -> None:
    from facexplain.errors import AssetMissing, InvalidArgument
    from facexplain.method_info import ExplainOptions
    from facexplain.methods.registry import all_methods, get_method

    assert "parts" in all_methods()
    info = get_method("parts")
    assert info.family == "layer" and [m.name for m in info.maps] == ["difference"]
    path = checkpoint_path("sface", "sad+fad", "half1", home)
    path.unlink(missing_ok=True)
    with pytest.raises(AssetMissing, match="facexplain train parts"):
        info.build(pipe.scorer, ExplainOptions())
    head = random_head(1)
    peaks = [[(3 * j) % 14, j % 14] for j in range(N_FILTERS)]
    save_head(head, path, {"peaks": {"mean": peaks}})
    try:
        info.check(ExplainOptions(), pipe.spec)
        from facexplain.backbones.registry import get_spec

        with pytest.raises(InvalidArgument):
            info.check(ExplainOptions(), get_spec("faceres"))
        result = info.build(pipe.scorer, ExplainOptions()).explain(pair)
        assert result.method == "parts"
        assert result.maps["difference"].shape == (2, 112, 112)
        d = result.meta
        assert d.parts is not None and len(d.parts) == N_FILTERS  # type: ignore[attr-defined]
        assert info.note is not None and "filter" in info.note(result)
        assert info.figures is not None
        figs = info.figures(result, pair, tmp_path)
        assert (tmp_path / figs[0].src).is_file()
        ranked = info.rankings[0].ranking(result.maps, "difference")
        assert ranked.shape == (2, 112, 112)
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)


def test_analyze_filters_without_heads_is_a_one_line_error(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from facexplain.cli.app import main

    monkeypatch.setattr(sys, "argv", ["facexplain", "analyze", "filters", "--images", "5"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "no 'base' part-filter head" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_peak_metadata_names_every_filter(pipe: FacePipeline, pair: torch.Tensor) -> None:
    from facexplain.analysis.filters import peak_metadata
    from facexplain.explain.parts import parts_from_meta

    head = random_head()
    meta = peak_metadata(head, pipe.model, pair)
    names = parts_from_meta(meta, head)
    assert names is not None and len(names) == N_FILTERS


def test_method_all_skips_methods_a_backbone_cannot_run() -> None:
    """`--method all` on a backbone without part-filter nodes runs the others; naming `parts`
    there is a one-line error before any model loads."""
    from facexplain.api import resolve_methods
    from facexplain.backbones.registry import get_spec
    from facexplain.errors import InvalidArgument
    from facexplain.method_info import ExplainOptions

    names = [i.name for i in resolve_methods("all", ExplainOptions(), get_spec("faceres"))]
    assert "parts" not in names and "occlusion" in names and "xcos" in names
    assert "parts" in [i.name for i in resolve_methods("all", ExplainOptions(),
                                                       get_spec("sface"))]
    with pytest.raises(InvalidArgument, match="part-filter"):
        resolve_methods("parts", ExplainOptions(), get_spec("faceres"))
