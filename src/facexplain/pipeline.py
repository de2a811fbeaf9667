"""Photo -> aligned face -> embedding, for one backbone: the flow every command shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facexplain import assets
from facexplain.align import MTCNN, align_image, choose_face, fallback_detection
from facexplain.backbones.base import FaceModel
from facexplain.backbones.registry import BackboneSpec, get_spec, load_backbone
from facexplain.errors import NoFaceFound
from facexplain.explain.scorer import PairScorer
from facexplain.io import load_image
from facexplain.types import AlignedFace, Detection, FacePair


@dataclass(frozen=True)
class LocatedFace:
    """The chosen face of one photo: its detection, how many were found, whether guessed."""

    detection: Detection
    n_faces: int
    fallback: bool


class FacePipeline:
    """A detector and one backbone, built once and reused for many photos (a server or a batch
    worker keeps one); ``scorer`` is the backbone's pair score, shared by every method."""

    def __init__(
        self,
        backbone: str = "sface",
        root: Path | None = None,
        detector: MTCNN | None = None,
        model: FaceModel | None = None,
    ) -> None:
        self.spec: BackboneSpec = get_spec(backbone)
        root = root or assets.home()
        self.detector = detector or MTCNN(root=root)
        self.model = model or load_backbone(backbone, root)
        self.scorer = PairScorer(self.model, self.spec)

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

    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor, flip: bool = False, batch_size: int = 32) -> torch.Tensor:
        """Embeddings of aligned faces (N, 3, H, W); ``flip`` adds the mirrored face's embedding."""
        out = []
        for start in range(0, pixels.shape[0], batch_size):
            x = pixels[start : start + batch_size]
            e = self.model(x)
            if flip:
                e = e + self.model(torch.flip(x, dims=[3]))
            out.append(e)
        return torch.cat(out)
