"""Shared fixtures of the integration tests: the real SFace model and six aligned LFW faces."""

from __future__ import annotations

import pytest
import torch

from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

# Two people, three photos each: face i and j are the same person when i // 3 == j // 3.
TWO_PEOPLE = (("Colin_Powell", (1, 2, 3)), ("Serena_Williams", (1, 2, 3)))


@pytest.fixture(scope="module")
def sface_pipe() -> FacePipeline:
    return FacePipeline("sface")


@pytest.fixture(scope="module")
def six_faces(sface_pipe: FacePipeline) -> torch.Tensor:
    """The six photos of ``TWO_PEOPLE``, aligned for SFace, (6, 3, 112, 112)."""
    return torch.stack([sface_pipe.align_path(lfw_image(name, i)).pixels
                        for name, ids in TWO_PEOPLE for i in ids])
