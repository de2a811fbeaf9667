"""MTCNN face detector (P-Net, R-Net, O-Net) in plain torch, with the facenet-pytorch 2.6.0 weights.

Why our own code: facenet-pytorch imports torchvision (which does not import next to our torch)
and pins an old torch, so we load only its three state dicts and run the standard cascade here:
image pyramid -> P-Net proposals -> R-Net refinement -> O-Net boxes and five landmarks, with NMS
written in torch. Coordinates follow the original MTCNN (and facenet-pytorch) conventions, which
the alignment templates were measured with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facexplain.assets import asset_path
from facexplain.errors import InvalidArgument, NoFaceFound
from facexplain.types import Detection

# ---------------------------------------------------------------------------------------------
# The three networks. Layer names match the facenet-pytorch state dicts exactly.
# ---------------------------------------------------------------------------------------------


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (box offsets (N,4,h,w), face probability (N,h,w))."""
        x = self.prelu1(self.conv1(x))
        x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return self.conv4_2(x), prob


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (box offsets (N,4), face probability (N,))."""
        x = self.prelu1(self.conv1(x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.prelu2(self.conv2(x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x))
        # The weights were converted from a TF port that ran on transposed images and flattened
        # channels-last: the dense layer expects (W, H, C) order.
        x = x.permute(0, 3, 2, 1).flatten(1)
        x = self.prelu4(self.dense4(x))
        prob = torch.softmax(self.dense5_1(x), dim=1)[:, 1]
        return self.dense5_2(x), prob


class ONet(nn.Module):
    """Output net on 48x48 crops: final box, score and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return (box offsets (N,4), landmarks (N,10) as 5 x then 5 y, probability (N,))."""
        x = self.prelu1(self.conv1(x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.prelu2(self.conv2(x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x))
        x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).flatten(1)
        x = self.prelu5(self.dense5(x))
        prob = torch.softmax(self.dense6_1(x), dim=1)[:, 1]
        return self.dense6_2(x), self.dense6_3(x), prob


# ---------------------------------------------------------------------------------------------
# Box utilities (functional, torch only).
# ---------------------------------------------------------------------------------------------


def box_iou_one(box: Tensor, boxes: Tensor, mode: str = "union") -> Tensor:
    """Overlap of one (4,) box with (N,4) boxes: IoU ('union') or intersection/min area ('min')."""
    iw = (torch.minimum(box[2], boxes[:, 2]) - torch.maximum(box[0], boxes[:, 0])).clamp(min=0)
    ih = (torch.minimum(box[3], boxes[:, 3]) - torch.maximum(box[1], boxes[:, 1])).clamp(min=0)
    inter = iw * ih
    area = (box[2] - box[0]).clamp(min=0) * (box[3] - box[1]).clamp(min=0)
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    if mode == "min":
        denom = torch.minimum(area, areas)
    elif mode == "union":
        denom = area + areas - inter
    else:
        raise InvalidArgument(f"unknown NMS mode {mode!r}; use 'union' or 'min'")
    return inter / denom.clamp(min=1e-12)


def nms(boxes: Tensor, scores: Tensor, threshold: float, mode: str = "union") -> Tensor:
    """Greedy non-maximum suppression; returns kept indices, highest score first.

    A box is dropped when its overlap with an already kept, higher-scoring box is *above*
    ``threshold``. Ties in score keep the earlier box.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    n = order.numel()
    keep: list[int] = []
    if n <= _NMS_MATRIX_MAX:
        # One overlap matrix, then a cheap greedy pass over its rows.
        suppress = (_overlap_matrix(sorted_boxes, mode) > threshold).numpy()
        removed = np.zeros(n, dtype=bool)
        for i in range(n):
            if not removed[i]:
                keep.append(i)
                removed |= suppress[i]
    else:
        alive = torch.ones(n, dtype=torch.bool)
        for i in range(n):
            if alive[i]:
                keep.append(i)
                rest = slice(i + 1, None)
                alive[rest] &= box_iou_one(sorted_boxes[i], sorted_boxes[rest], mode) <= threshold
    return order[torch.tensor(keep, dtype=torch.long)]


_NMS_MATRIX_MAX = 2048


def _overlap_matrix(boxes: Tensor, mode: str) -> Tensor:
    """All-pairs overlap of (N,4) boxes, (N,N), same definition as ``box_iou_one``."""
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    areas = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    if mode == "min":
        denom = torch.minimum(areas[:, None], areas[None, :])
    elif mode == "union":
        denom = areas[:, None] + areas[None, :] - inter
    else:
        raise InvalidArgument(f"unknown NMS mode {mode!r}; use 'union' or 'min'")
    return inter / denom.clamp(min=1e-12)


def square_boxes(boxes: Tensor) -> Tensor:
    """Grow each (x1,y1,x2,y2) box to a square around its centre (the nets take square crops)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + 0.5 * (w - side)
    y1 = boxes[:, 1] + 0.5 * (h - side)
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def regress_boxes(boxes: Tensor, offsets: Tensor, inclusive: bool = True) -> Tensor:
    """Apply the nets' box offsets, which are fractions of the box width/height.

    ``inclusive`` measures sizes as x2 - x1 + 1 (integer pixel boxes, stages 2 and 3);
    stage 1 uses x2 - x1, as the original MTCNN does.
    """
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    scale = torch.stack([w, h, w, h], dim=1)
    return boxes + offsets * scale


def crop_resize(image: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Cut integer boxes out of a (1,3,H,W) image and resize each to ``size`` (area averaging).

    Boxes are 1-based inclusive pixel boxes (x1..x2), as in the original MTCNN; parts outside the
    image are zero, which keeps the crop square instead of clipping and distorting it.
    """
    _, _, h, w = image.shape
    b = boxes.to(torch.long)
    # Zero-pad the image once by however far the boxes reach outside it.
    pad = int(max(0, 1 - int(b[:, 0].min()), 1 - int(b[:, 1].min()),
                  int(b[:, 2].max()) - w, int(b[:, 3].max()) - h))
    padded = F.pad(image, (pad, pad, pad, pad)) if pad > 0 else image
    out = torch.empty(b.shape[0], 3, size, size, dtype=image.dtype)
    for k, (x1, y1, x2, y2) in enumerate(b.tolist()):
        patch = padded[:, :, y1 - 1 + pad : y2 + pad, x1 - 1 + pad : x2 + pad]
        out[k] = F.interpolate(patch, size=(size, size), mode="area")[0]
    return out


def _normalise(x: Tensor) -> Tensor:
    """The nets were trained on (pixel - 127.5) / 128.

    Inputs go channels_last: convolutions keep that layout, and CPU max-pooling runs about ten
    times faster in it than in NCHW (measured: MTCNN 97 -> 35 ms per LFW image, one thread).
    """
    return ((x - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


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


def _load_net(net: nn.Module, name: str, root: Path | None) -> nn.Module:
    state = torch.load(asset_path(f"mtcnn/{name}.pt", root), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    for conv in net.modules():
        if isinstance(conv, nn.Conv2d):  # keep activations channels_last (see _normalise)
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    return net.eval().requires_grad_(False)


class MTCNN:
    """The three-stage MTCNN cascade; ``detect(image)`` returns faces sorted by score.

    Loading is explicit (construct it once, reuse it): the weights are read from the asset cache
    (``mtcnn/{pnet,rnet,onet}.pt``) and ``AssetMissing`` names the set-up command if absent.
    """

    def __init__(self, config: MTCNNConfig | None = None, root: Path | None = None) -> None:
        self.config = config or MTCNNConfig()
        self.pnet = _load_net(PNet(), "pnet", root)
        self.rnet = _load_net(RNet(), "rnet", root)
        self.onet = _load_net(ONet(), "onet", root)

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

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Find faces in an RGB uint8 image (H, W, 3); empty list when there are none."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise InvalidArgument(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
        img = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
        boxes = self._stage1(img)
        if boxes.shape[0] == 0:
            return []
        boxes = self._stage2(img, boxes)
        if boxes.shape[0] == 0:
            return []
        boxes, scores, points = self._stage3(img, boxes)
        return [
            Detection(box=b.numpy().astype(np.float32), landmarks=p.numpy().astype(np.float32),
                      score=float(s))
            for b, s, p in zip(boxes, scores, points, strict=True)
        ]

    def _stage1(self, img: Tensor) -> Tensor:
        """P-Net over the pyramid -> square integer candidate boxes (N,4)."""
        cfg = self.config
        _, _, h, w = img.shape
        found: list[Tensor] = []
        for scale in self.scales(h, w):
            size = (int(h * scale + 1), int(w * scale + 1))
            offsets, prob = self.pnet(_normalise(F.interpolate(img, size=size, mode="area")))
            ys, xs = torch.nonzero(prob[0] >= cfg.thresholds[0], as_tuple=True)
            if ys.numel() == 0:
                continue
            # Each output cell sees a 12x12 window at stride 2 of the scaled image.
            cell = torch.stack([xs, ys], dim=1).to(img.dtype)
            q1 = torch.floor((2 * cell + 1) / scale)
            q2 = torch.floor((2 * cell + 12) / scale)
            cand = torch.cat([q1, q2, prob[0, ys, xs, None], offsets[0, :, ys, xs].T], dim=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], cfg.nms_scale)])
        if not found:
            return torch.zeros(0, 4)
        cand = torch.cat(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], cfg.nms_stage1)]
        boxes = regress_boxes(cand[:, :4], cand[:, 5:9], inclusive=False)
        return self._valid(torch.trunc(square_boxes(boxes)), h, w)

    def _stage2(self, img: Tensor, boxes: Tensor) -> Tensor:
        """R-Net on 24x24 crops: drop non-faces, suppress, regress, square."""
        cfg = self.config
        _, _, h, w = img.shape
        offsets, prob = self._batched(self.rnet, _normalise(crop_resize(img, boxes, 24)))
        ok = prob > cfg.thresholds[1]
        boxes, offsets, prob = boxes[ok], offsets[ok], prob[ok]
        keep = nms(boxes, prob, cfg.nms_stage2)
        boxes = regress_boxes(boxes[keep], offsets[keep])
        return self._valid(torch.trunc(square_boxes(boxes)), h, w)

    def _stage3(self, img: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """O-Net on 48x48 crops -> final boxes (N,4), scores (N,), landmarks (N,5,2)."""
        cfg = self.config
        offsets, marks, prob = self._batched(self.onet, _normalise(crop_resize(img, boxes, 48)))
        ok = prob > cfg.thresholds[2]
        boxes, offsets, marks, prob = boxes[ok], offsets[ok], marks[ok], prob[ok]
        # Landmarks are fractions of the (inclusive) crop size; -1 turns 1-based into 0-based.
        wh = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]
        points = marks.view(-1, 2, 5).transpose(1, 2) * wh + boxes[:, None, 0:2] - 1
        boxes = regress_boxes(boxes, offsets)
        keep = nms(boxes, prob, cfg.nms_stage3, mode="min")
        return boxes[keep], prob[keep], points[keep]

    @staticmethod
    def _valid(boxes: Tensor, h: int, w: int) -> Tensor:
        """Keep boxes that overlap the image and have a positive size."""
        ok = ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
              & (boxes[:, 2] >= 1) & (boxes[:, 3] >= 1) & (boxes[:, 0] <= w) & (boxes[:, 1] <= h))
        return boxes[ok]

    def _batched(self, net: nn.Module, crops: Tensor) -> tuple[Tensor, ...]:
        """Run a refinement net in fixed-size batches (bounds memory on crowded photos)."""
        parts = [net(crops[i : i + self.config.batch_size])
                 for i in range(0, crops.shape[0], self.config.batch_size)]
        return tuple(torch.cat(list(p)) for p in zip(*parts, strict=True))


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
