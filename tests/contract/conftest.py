"""A model home for contract tests: the real model files, plus (random) xCos and part-filter
heads for sface.

The head's weights are random on purpose: the contract tests check shapes, determinism and
symmetry of every registered method, not what a trained head has learnt; a trained one would
take minutes to make.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from facexplain import settings


@pytest.fixture(scope="session")
def contract_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary FACEXPLAIN_HOME linking the real model files, with an xCos head for sface."""
    from facexplain.heads.parts import PartsHead, PartsHeadConfig, nodes_for
    from facexplain.heads.parts import checkpoint_path as parts_checkpoint
    from facexplain.heads.parts import save_head as save_parts
    from facexplain.heads.xcos import XCosHead, XCosHeadConfig, checkpoint_path, save_head

    real = settings.current().home
    home = tmp_path_factory.mktemp("home")
    for entry in real.iterdir():
        if entry.is_dir() and entry.name not in ("xcos", "parts", "cache", "_downloads",
                                                 "records"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, home / entry.name)
    torch.manual_seed(0)
    head = XCosHead(XCosHeadConfig(in_channels=1024, height=7, width=7, cell_specific=True,
                                   backbone="sface", node="conv_14_relu", teacher="sface"))
    save_head(head, checkpoint_path("sface", None, home), {"note": "random, for tests"})
    parts = PartsHead(PartsHeadConfig(backbone="sface", nodes=nodes_for("sface"),
                                      in_channels=(256, 512, 1024), grid=14, late_size=7,
                                      n_filters=32, branch_channels=8))
    save_parts(parts, parts_checkpoint("sface", "sad+fad", "all", home),
               {"note": "random, for tests"})
    mp = pytest.MonkeyPatch()
    mp.setenv(settings.HOME_ENV, str(home))
    yield home
    mp.undo()
