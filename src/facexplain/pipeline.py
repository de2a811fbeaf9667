"""Photo -> aligned face -> embedding, for one backbone: the flow every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facexplain import assets, settings
from facexplain.align import MTCNN, align_image, choose_face, fallback_detection
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.backbones.runtime import load_runtime, runtime_key
from facexplain.backbones.spec import BackboneSpec
from facexplain.errors import NoFaceFound
from facexplain.io import load_image
from facexplain.onnxrt import ForwardRuntime
from facexplain.scoring import cosine_rows
from facexplain.types import AlignedFace, FacePair, LocatedFace

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.base import FaceModel
    from facexplain.explain.scorer import PairScorer


class FacePipeline:
    """A detector and one backbone, built once and reused for many photos (a server or a batch
    worker keeps one); ``scorer`` is the backbone's pair score, shared by every method.

    The torch module is loaded on first use of ``model`` or ``scorer``. ``embed`` and
    ``similarity`` need no gradient: they run the backbone's exported graph on onnxruntime
    (``backbones.runtime``) when set-up built one and no module was passed in; a pipeline whose
    weights will be edited in place (sanity checks) passes ``forward_runtime=False``.
    """

    def __init__(
        self,
        backbone: str | BackboneSpec = "sface",
        root: Path | None = None,
        detector: MTCNN | None = None,
        model: FaceModel | None = None,
        forward_runtime: bool = True,
    ) -> None:
        self.spec: BackboneSpec = (backbone if isinstance(backbone, BackboneSpec)
                                   else get_spec(backbone))
        self.root = root or assets.home()
        self.detector = detector or MTCNN(root=self.root)
        self._model = model
        self._scorer: PairScorer | None = None
        self._runtime: ForwardRuntime | None = None
        self._runtime_checked = not forward_runtime or model is not None

    @property
    def model(self) -> FaceModel:
        if self._model is None:
            import torch

            # First use may come inside an inference_mode block: weights built there would be
            # inference tensors, which later autograd (gradient methods) cannot use.
            with torch.inference_mode(False):
                self._model = load_backbone(self.spec.name, self.root)
        return self._model

    @property
    def scorer(self) -> PairScorer:
        if self._scorer is None:
            from facexplain.explain.scorer import PairScorer

            self._scorer = PairScorer(self.model, self.spec)
        return self._scorer

    def runtime(self) -> ForwardRuntime | None:
        """The forward-only runtime in use, or None (torch)."""
        if not self._runtime_checked:
            self._runtime = load_runtime(self.spec.name, self.root, settings.cpu_threads())
            self._runtime_checked = True
        return self._runtime

    def embedding_key(self) -> str:
        """What ``embed`` results depend on (runtime file or module weights): a cache key."""
        if self.runtime() is not None:
            return f"ort-{runtime_key(self.spec.name, self.root)[:16]}"
        return self.scorer.fingerprint()[:16]

    def locate(
        self, image: np.ndarray, policy: str = "largest", allow_fallback: bool = False,
        source: str = "",
    ) -> LocatedFace:
        """Detect faces and choose one ('largest' for user photos, 'center' for LFW)."""
        detections = self.detector.detect(image)
        if not detections:
            if not allow_fallback:
                raise NoFaceFound(f"no face found in {source or 'the image'}")
            return LocatedFace(fallback_detection(image.shape), 0, True)
        return LocatedFace(choose_face(detections, image.shape, policy), len(detections), False)

    def align_path(self, path: str | Path) -> AlignedFace:
        """Load a user photo, pick its largest face and warp it to the backbone's template."""
        return align_image(load_image(path), self.detector, self.spec.alignment,
                           policy="largest", source=str(path))

    def pair(self, path_a: str | Path, path_b: str | Path) -> FacePair:
        return FacePair(self.align_path(path_a), self.align_path(path_b), self.spec.name)

    def embed(self, pixels: torch.Tensor, flip: bool = False, batch_size: int = 32) -> torch.Tensor:
        """Embeddings of aligned faces (N, 3, H, W); ``flip`` adds the mirrored face's embedding."""
        import torch

        runtime = self.runtime()
        forward = self.model if runtime is None else (
            lambda x: torch.from_numpy(runtime(x.numpy())))
        out = []
        with torch.inference_mode():
            for start in range(0, pixels.shape[0], batch_size):
                x = pixels[start : start + batch_size].float()
                e = forward(x)
                if flip:
                    e = e + forward(torch.flip(x, dims=[3]).contiguous())
                out.append(e)
        return torch.cat(out)

    def embed_arrays(self, faces: np.ndarray) -> np.ndarray:
        """Embeddings (N, D) of aligned crops (N, 3, H, W) as numpy, forward-only: on the
        runtime without importing torch where there is one (photo quality's extra passes)."""
        runtime = self.runtime()
        x = np.ascontiguousarray(faces, dtype=np.float32)
        if runtime is not None:
            return np.asarray(runtime(x))
        import torch

        return self.embed(torch.from_numpy(x)).numpy()

    def embeddings(self, pair: FacePair) -> np.ndarray:
        """(2, D) embeddings of a clean aligned pair, forward-only: on the runtime where there
        is one (no torch), else the scorer's (remembered per pair and weights)."""
        runtime = self.runtime()
        if runtime is None:
            return self.scorer.embed_pair(pair.tensor).numpy()
        return np.asarray(runtime(pair.array))

    def similarity(self, pair: FacePair) -> float:
        """Cosine similarity of a clean aligned pair: what the verdict thresholds (forward-only:
        on the runtime, where there is one, without loading torch)."""
        runtime = self.runtime()
        if runtime is None:
            return self.scorer.similarity(pair.tensor)
        emb = runtime(pair.array)
        return float(cosine_rows(emb[0], emb[1]))
