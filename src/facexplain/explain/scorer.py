"""The pair score of a backbone, as one object that owns the model and what is derived from it.

Why: the verdict, occlusion and the gradient methods each embedded the clean pair again, the
incremental occlusion kept its stage geometry in a module global, and nothing checked that the
pair score and the model used for incremental evaluation were the same network. A ``PairScorer``
is the pair score (callable like any ``PairScore``) *and* the model behind it: it embeds a clean
pair once (remembered by content), measures the incremental geometry once per input shape, and
names its weights by a hash, so on-disk caches are keyed by what was computed, not by a name.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import torch

from facexplain.backbones.base import FaceModel
from facexplain.progress import check_in
from facexplain.scoring import cosine

if TYPE_CHECKING:
    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.incremental import CropChecks, Geometry, IncrementalPairScore


def tensor_digest(t: torch.Tensor) -> str:
    """Content hash of a tensor (shape, dtype and values)."""
    data = t.detach().to("cpu").contiguous()
    h = hashlib.sha1(f"{tuple(data.shape)}{data.dtype}".encode())
    h.update(np.ascontiguousarray(data.numpy()).tobytes())
    return h.hexdigest()


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of a module's class and the values of every parameter and buffer (persistent or
    not): the key of anything computed with these weights (caches, Θ, calibration records).

    Values, not torch's version counters: edits through ``p.data`` or ``vector_to_parameters``
    do not bump those, and a result of the old weights must never come back.
    """
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        h.update(name.encode())
        h.update(tensor_digest(t).encode())
    return h.hexdigest()


class PairScorer:
    """Cosine similarity of two faces' embeddings under ``model``: what verification thresholds.

    Call it with (N, 3, H, W) faces A and B for N pair scores (a ``PairScore``). ``similarity``
    and ``embed_pair`` remember the last clean pair; ``incremental`` gives the occlusion
    evaluator of a pair with the geometry cached here; ``fingerprint`` hashes the weights.
    """

    def __init__(self, model: FaceModel, spec: BackboneSpec | None = None) -> None:
        self.model = model
        self.spec = spec
        self.geometry: Geometry = {}
        self.crop_checks: CropChecks = {}
        self._last: tuple[tuple[str, str], torch.Tensor] | None = None
        self._weights: str | None = None
        self.clean_embeddings = 0  # how many clean pairs were embedded (tests check reuse)

    def require_spec(self) -> BackboneSpec:
        """The backbone's registry row (template, nodes, Θ key); methods that need it ask here."""
        if self.spec is None:
            from facexplain.errors import InvalidArgument

            raise InvalidArgument("this method needs a registered backbone (its template and "
                                  "nodes); build the scorer with spec=")
        return self.spec

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        check_in()  # every batch any method scores is a point where a web job may stop
        return cosine(self.model(a), self.model(b))

    def fingerprint(self) -> str:
        """sha256 of the model's weight values, checked on every call (tens of ms): when they
        changed since the last call, everything remembered from the old weights is dropped."""
        current = model_fingerprint(self.model)
        if current != self._weights:
            if self._weights is not None:
                self._last = None
                forget = getattr(self.model, "forget_compiled", None)
                if forget is not None:
                    forget()
            self._weights = current
        return current

    def embed_pair(self, pair: torch.Tensor) -> torch.Tensor:
        """(2, D) embeddings of a clean (2, 3, H, W) pair, computed once per distinct pair and
        state of the weights (re-initialised or fine-tuned weights embed it again)."""
        key = (tensor_digest(pair), self.fingerprint())
        if self._last is None or self._last[0] != key:
            with torch.inference_mode():
                emb = self.model(pair.detach().float().clone())
            self._last = (key, emb.detach().clone())
            self.clean_embeddings += 1
        return self._last[1]

    def similarity(self, pair: torch.Tensor) -> float:
        emb = self.embed_pair(pair)
        return float(cosine(emb[0:1], emb[1:2])[0])

    def incremental(self, pair: torch.Tensor, cap: float | None = None) -> IncrementalPairScore:
        """An ``IncrementalPairScore`` for ``pair``, reusing this scorer's stage geometry
        (``cap``: the approximate mode's projective-field threshold; None is exact)."""
        from facexplain.explain.incremental import IncrementalPairScore

        self.fingerprint()  # weights edited since the last pair: drop what they computed
        with torch.inference_mode():
            return IncrementalPairScore(self.model, pair.detach().float(), self.geometry, cap,
                                        self.crop_checks)


def clean_score(score_fn: object, pair: torch.Tensor) -> float:
    """The pair score of a clean (2, 3, H, W) pair, reusing a scorer's remembered embedding."""
    if isinstance(score_fn, PairScorer):
        return score_fn.similarity(pair)
    assert callable(score_fn)
    with torch.no_grad():
        return float(score_fn(pair[0:1], pair[1:2]).reshape(-1)[0])
