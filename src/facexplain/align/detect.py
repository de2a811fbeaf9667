"""MTCNN face detector (P-Net, R-Net, O-Net) with the facenet-pytorch 2.6.0 weights, in numpy.

Why our own code: facenet-pytorch imports torchvision (which does not import next to our torch)
and pins an old torch, so we load only its three state dicts and run the standard cascade here:
image pyramid -> P-Net proposals -> R-Net refinement -> O-Net boxes and five landmarks.
Coordinates follow the original MTCNN (and facenet-pytorch) conventions, which the alignment
templates were measured with. The cascade is numpy and the nets run on onnxruntime from the
graphs set-up exported from the torch modules (``align.mtcnn_nets``), so detecting a face does
not import torch (a cold ``verify`` pays ~2 s for that import); a model home without those
graphs runs the torch modules instead, with the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facexplain import assets, settings
from facexplain.align.mtcnn_files import NET_NAMES, RUNTIMES
from facexplain.errors import AssetMissing, InvalidArgument, NoFaceFound
from facexplain.onnxrt import ort_session
from facexplain.types import Detection

# A net as the cascade calls it: float32 NCHW array in, its outputs as arrays.
Net = Callable[[np.ndarray], list[np.ndarray]]


class OrtNet:
    """One exported net on onnxruntime."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        self.session = ort_session(path, threads)
        # P-Net sees a new input shape at every pyramid level, so onnxruntime's memory arena
        # grew to the largest photo's need (about 250 MB for a 2048 px one) and kept it: a
        # web server stayed that much larger after one big upload. Shrink it after each run.
        self.options = ort.RunOptions()
        self.options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(o) for o in self.session.run(None, {"input": x}, self.options)]


def load_nets(root: Path | None = None) -> tuple[dict[str, Net], str]:
    """The three nets and which runtime runs them: onnxruntime when set-up exported them,
    else the torch modules (imported only then)."""
    root = root or assets.home()
    threads = settings.cpu_threads()
    try:
        paths = {n: assets.asset_path(RUNTIMES[n].name, root) for n in NET_NAMES}
    except AssetMissing:
        from facexplain.align.mtcnn_nets import torch_runner

        return {n: torch_runner(n, root) for n in NET_NAMES}, "torch"
    return {n: OrtNet(p, threads) for n, p in paths.items()}, "onnxruntime"


# ---------------------------------------------------------------------------------------------
# Box utilities (functional, numpy; float32 like the nets).
# ---------------------------------------------------------------------------------------------


def _overlap(box: np.ndarray, boxes: np.ndarray, mode: str) -> np.ndarray:
    """Overlap of (..., 4) ``box`` with (N, 4) ``boxes``: IoU ('union') or
    intersection / smaller area ('min'). ``box`` may be (M, 1, 4) for an all-pairs matrix."""
    lt = np.maximum(box[..., :2], boxes[..., :2])
    rb = np.minimum(box[..., 2:], boxes[..., 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area = np.clip(box[..., 2:] - box[..., :2], 0, None).prod(axis=-1)
    areas = np.clip(boxes[..., 2:] - boxes[..., :2], 0, None).prod(axis=-1)
    if mode == "min":
        denom = np.minimum(area, areas)
    elif mode == "union":
        denom = area + areas - inter
    else:
        raise InvalidArgument(f"unknown NMS mode {mode!r}; use 'union' or 'min'")
    return inter / np.maximum(denom, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union"
        ) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, highest score first.

    A box is dropped when its overlap with an already kept, higher-scoring box is *above*
    ``threshold``. Ties in score keep the earlier box.
    """
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    ordered = boxes[order]
    n = order.size
    keep: list[int] = []
    if n <= _NMS_MATRIX_MAX:
        # One overlap matrix, then a cheap greedy pass over its rows.
        suppress = _overlap(ordered[:, None, :], ordered[None, :, :], mode) > threshold
        removed = np.zeros(n, dtype=bool)
        for i in range(n):
            if not removed[i]:
                keep.append(i)
                removed |= suppress[i]
    else:
        alive = np.ones(n, dtype=bool)
        for i in range(n):
            if alive[i]:
                keep.append(i)
                alive[i + 1 :] &= _overlap(ordered[i], ordered[i + 1 :], mode) <= threshold
    return order[np.asarray(keep, dtype=np.int64)]


_NMS_MATRIX_MAX = 2048


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each (x1,y1,x2,y2) box to a square around its centre (the nets take square crops)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + 0.5 * (w - side)
    y1 = boxes[:, 1] + 0.5 * (h - side)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def regress_boxes(boxes: np.ndarray, offsets: np.ndarray, inclusive: bool = True) -> np.ndarray:
    """Apply the nets' box offsets, which are fractions of the box width/height.

    ``inclusive`` measures sizes as x2 - x1 + 1 (integer pixel boxes, stages 2 and 3);
    stage 1 uses x2 - x1, as the original MTCNN does.
    """
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (C, H, W) float image by averaging each output cell's input bin (torch's
    ``interpolate(mode='area')``: bin i spans floor(i·H/h) .. ceil((i+1)·H/h))."""
    c, h, w = image.shape

    def bins(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(n_out)
        return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)

    (y0, y1), (x0, x1) = bins(h, height), bins(w, width)
    rows = np.zeros((c, h + 1, w))
    np.cumsum(image, axis=1, out=rows[:, 1:])
    rows = (rows[:, y1] - rows[:, y0]) / (y1 - y0)[None, :, None]
    cols = np.zeros((c, height, w + 1))
    np.cumsum(rows, axis=2, out=cols[:, :, 1:])
    return ((cols[:, :, x1] - cols[:, :, x0]) / (x1 - x0)).astype(np.float32)


def crop_resize(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut integer boxes out of a (3,H,W) image and resize each to ``size`` (area averaging).

    Boxes are 1-based inclusive pixel boxes (x1..x2), as in the original MTCNN; parts outside the
    image are zero, which keeps the crop square instead of clipping and distorting it.
    """
    _, h, w = image.shape
    b = boxes.astype(np.int64)
    # Zero-pad the image once by however far the boxes reach outside it.
    pad = int(max(0, 1 - int(b[:, 0].min()), 1 - int(b[:, 1].min()),
                  int(b[:, 2].max()) - w, int(b[:, 3].max()) - h))
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad))) if pad > 0 else image
    out = np.empty((b.shape[0], 3, size, size), dtype=np.float32)
    for k, (x1, y1, x2, y2) in enumerate(b.tolist()):
        out[k] = area_resize(padded[:, y1 - 1 + pad : y2 + pad, x1 - 1 + pad : x2 + pad],
                             size, size)
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    """The nets were trained on (pixel - 127.5) / 128."""
    return ((x - np.float32(127.5)) * np.float32(0.0078125)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The detector.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MTCNNConfig:
    """Cascade settings; the defaults are the published MTCNN ones."""

    min_face_size: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms_scale: float = 0.5
    nms_stage1: float = 0.7
    nms_stage2: float = 0.7
    nms_stage3: float = 0.7
    batch_size: int = 512


class MTCNN:
    """The three-stage MTCNN cascade; ``detect(image)`` returns faces sorted by score.

    Loading is explicit (construct it once, reuse it): the nets come from the model home
    (``load_nets``) and ``AssetMissing`` names the set-up command if their files are absent.
    """

    def __init__(self, config: MTCNNConfig | None = None, root: Path | None = None) -> None:
        self.config = config or MTCNNConfig()
        nets, self.runtime = load_nets(root)
        self.pnet, self.rnet, self.onet = (nets[n] for n in NET_NAMES)

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: the smallest face maps to P-Net's 12 px, down to a 12 px image."""
        cfg = self.config
        m = 12.0 / cfg.min_face_size
        side = min(height, width) * m
        out: list[float] = []
        scale = m
        while side >= 12.0:
            out.append(scale)
            scale *= cfg.factor
            side *= cfg.factor
        return out

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Find faces in an RGB uint8 image (H, W, 3); empty list when there are none."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise InvalidArgument(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
        img = np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1))
        boxes = self._stage1(img)
        if boxes.shape[0] == 0:
            return []
        boxes = self._stage2(img, boxes)
        if boxes.shape[0] == 0:
            return []
        boxes, scores, points = self._stage3(img, boxes)
        return [
            Detection(box=b.astype(np.float32), landmarks=p.astype(np.float32), score=float(s))
            for b, s, p in zip(boxes, scores, points, strict=True)
        ]

    def _stage1(self, img: np.ndarray) -> np.ndarray:
        """P-Net over the pyramid -> square integer candidate boxes (N,4)."""
        cfg = self.config
        _, h, w = img.shape
        found: list[np.ndarray] = []
        for scale in self.scales(h, w):
            size = (int(h * scale + 1), int(w * scale + 1))
            offsets, prob = self.pnet(_normalise(area_resize(img, *size))[None])
            ys, xs = np.nonzero(prob[0] >= cfg.thresholds[0])
            if ys.size == 0:
                continue
            # Each output cell sees a 12x12 window at stride 2 of the scaled image.
            cell = np.stack([xs, ys], axis=1).astype(np.float32)
            q1 = np.floor((2 * cell + 1) / np.float32(scale))
            q2 = np.floor((2 * cell + 12) / np.float32(scale))
            cand = np.concatenate([q1, q2, prob[0, ys, xs, None], offsets[0, :, ys, xs]], axis=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], cfg.nms_scale)])
        if not found:
            return np.zeros((0, 4), dtype=np.float32)
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], cfg.nms_stage1)]
        boxes = regress_boxes(cand[:, :4], cand[:, 5:9], inclusive=False)
        return self._valid(np.trunc(square_boxes(boxes)), h, w)

    def _stage2(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """R-Net on 24x24 crops: drop non-faces, suppress, regress, square."""
        cfg = self.config
        _, h, w = img.shape
        offsets, prob = self._batched(self.rnet, _normalise(crop_resize(img, boxes, 24)))
        ok = prob > cfg.thresholds[1]
        boxes, offsets, prob = boxes[ok], offsets[ok], prob[ok]
        keep = nms(boxes, prob, cfg.nms_stage2)
        boxes = regress_boxes(boxes[keep], offsets[keep])
        return self._valid(np.trunc(square_boxes(boxes)), h, w)

    def _stage3(self, img: np.ndarray, boxes: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-Net on 48x48 crops -> final boxes (N,4), scores (N,), landmarks (N,5,2)."""
        cfg = self.config
        offsets, marks, prob = self._batched(self.onet, _normalise(crop_resize(img, boxes, 48)))
        ok = prob > cfg.thresholds[2]
        boxes, offsets, marks, prob = boxes[ok], offsets[ok], marks[ok], prob[ok]
        # Landmarks are fractions of the (inclusive) crop size; -1 turns 1-based into 0-based.
        wh = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]
        points = marks.reshape(-1, 2, 5).transpose(0, 2, 1) * wh + boxes[:, None, 0:2] - 1
        boxes = regress_boxes(boxes, offsets)
        keep = nms(boxes, prob, cfg.nms_stage3, mode="min")
        return boxes[keep], prob[keep], points[keep]

    @staticmethod
    def _valid(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
        """Keep boxes that overlap the image and have a positive size."""
        ok = ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
              & (boxes[:, 2] >= 1) & (boxes[:, 3] >= 1) & (boxes[:, 0] <= w) & (boxes[:, 1] <= h))
        return boxes[ok]

    def _batched(self, net: Net, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        """Run a refinement net in fixed-size batches (bounds memory on crowded photos)."""
        parts = [net(crops[i : i + self.config.batch_size])
                 for i in range(0, crops.shape[0], self.config.batch_size)]
        return tuple(np.concatenate(list(p)) for p in zip(*parts, strict=True))


# ---------------------------------------------------------------------------------------------
# Choosing one face, and the benchmark fallback.
# ---------------------------------------------------------------------------------------------

POLICIES = ("largest", "center")


def choose_face(
    detections: Sequence[Detection], image_shape: Sequence[int], policy: str = "largest"
) -> Detection:
    """Pick the face to verify.

    'largest' (a user's photo: the subject is usually the biggest face; the caller warns when
    there are several) or 'center' (LFW's convention: the face whose box centre is closest to
    the image centre).
    """
    if policy not in POLICIES:
        raise InvalidArgument(f"unknown face policy {policy!r}; use one of {', '.join(POLICIES)}")
    if not detections:
        raise NoFaceFound("no face to choose from")
    if policy == "largest":
        return max(detections, key=lambda d: d.area)
    cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0

    def distance(d: Detection) -> float:
        x1, y1, x2, y2 = (float(v) for v in d.box)
        return math.hypot((x1 + x2) / 2.0 - cx, (y1 + y2) / 2.0 - cy)

    return min(detections, key=distance)


# Mean MTCNN output on LFW deep-funneled images (250x250), as fractions of (width, height).
# Derived with this detector over the 500 distinct images of the first 300 pairs of
# lfw/pairs.txt (no misses; the 'center' face where there were several): the mean box corners
# and landmarks divided by the image size. Recompute: python -m facexplain.align.survey LFW 300
FALLBACK_BOX = (0.3090, 0.2565, 0.6823, 0.7554)
FALLBACK_LANDMARKS = (
    (0.4179, 0.4515),
    (0.5854, 0.4476),
    (0.5032, 0.5496),
    (0.4312, 0.6356),
    (0.5788, 0.6324),
)


def fallback_detection(image_shape: Sequence[int]) -> Detection:
    """A centred face with LFW's mean layout, for benchmark images where MTCNN finds nothing.

    LFW deep-funneled images are roughly centred on the face, so this beats dropping the pair;
    the score is 0 so that callers can tell it from a real detection.
    """
    h, w = float(image_shape[0]), float(image_shape[1])
    scale = np.array([w, h], dtype=np.float32)
    box = np.asarray(FALLBACK_BOX, dtype=np.float32) * np.tile(scale, 2)
    marks = np.asarray(FALLBACK_LANDMARKS, dtype=np.float32) * scale
    return Detection(box=box, landmarks=marks, score=0.0)
