"""face-api's 68-point facial landmark net (``faceLandmark68Net``) as a torch module.

Why: region masks (eyes, brows, nose, mouth) and mesh warps need more than MTCNN's five points.
The weights are the TF.js files npm ``@vladmandic/face-api`` ships (``align.landmarks68_files``,
uint8-quantised, filters in HWIO); the network is written out here from face-api's description:

- input: the face resized to 112x112 (tfjs ``resizeBilinear`` without half-pixel centres),
  minus face-api's mean RGB, divided by 255;
- four dense blocks of four convolutions each (the first a plain 3x3 conv in block 0, separable
  ones elsewhere), the first convolution of each block with stride 2 (112 -> 56 -> 28 -> 14 -> 7),
  every later one fed the ReLU of the sum of all earlier outputs of its block; TF "same" padding;
- a 7x7 average pool (to 1x1x256) and a fully connected layer to 136 numbers: (x, y) of the 68
  points as fractions of the input's width and height (iBUG 68 order).

Only square crops are taken, so face-api's padding-to-square and its post-processing reduce to
multiplying by the crop size: a point (u, v) lands at (u * S, v * S) in the crop's pixel frame.
On aligned LFW faces the eye centroids, nose tip and mouth corners sit 2-3 px (at 112 px) from
MTCNN's five points on average (tests/integration/test_landmarks68.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facexplain import assets
from facexplain.align.landmarks68_files import MANIFEST, WEIGHTS
from facexplain.errors import InvalidArgument
from facexplain.tfjs_weights import read_tfjs_weights

INPUT_SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
DIVISOR = 255.0
N_POINTS = 68
BLOCKS = ("dense0", "dense1", "dense2", "dense3")


def _same_pad(x: Tensor, stride: int, kernel: int = 3) -> Tensor:
    """TF's "same" padding: what does not split evenly goes to the bottom and right."""
    pads: list[int] = []
    for size in (x.shape[3], x.shape[2]):  # F.pad wants the last dimension first
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _param(array: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))


class _Conv(nn.Module):
    """A plain 3x3 convolution with bias (only the first layer of the net)."""

    def __init__(self, w: dict[str, np.ndarray], prefix: str, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.weight = _param(w[f"{prefix}/filters"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
        self.bias = _param(w[f"{prefix}/bias"])

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(_same_pad(x, self.stride), self.weight, self.bias, self.stride)


class _SeparableConv(nn.Module):
    """Depthwise 3x3 (carries the stride) then pointwise 1x1, one bias after both."""

    def __init__(self, w: dict[str, np.ndarray], prefix: str, stride: int) -> None:
        super().__init__()
        self.stride = stride
        # depthwise [3, 3, C, 1] -> (C, 1, 3, 3); pointwise [1, 1, C, K] -> (K, C, 1, 1)
        self.depthwise = _param(w[f"{prefix}/depthwise_filter"].transpose(2, 3, 0, 1))
        self.pointwise = _param(w[f"{prefix}/pointwise_filter"].transpose(3, 2, 0, 1))
        self.bias = _param(w[f"{prefix}/bias"])

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(_same_pad(x, self.stride), self.depthwise, None, self.stride,
                     groups=x.shape[1])
        return F.conv2d(x, self.pointwise, self.bias)


class _DenseBlock(nn.Module):
    """Four convolutions; each later one reads the ReLU of the sum of all earlier outputs."""

    def __init__(self, w: dict[str, np.ndarray], name: str, first: bool) -> None:
        super().__init__()
        conv0: nn.Module = (_Conv(w, f"{name}/conv0", 2) if first
                            else _SeparableConv(w, f"{name}/conv0", 2))
        self.convs = nn.ModuleList(
            [conv0, *(_SeparableConv(w, f"{name}/conv{i}", 1) for i in (1, 2, 3))])

    def forward(self, x: Tensor) -> Tensor:
        total = F.relu(self.convs[0](x))
        for conv in self.convs[1:]:
            total = total + conv(F.relu(total))  # relu(total) is total for the first one
        return F.relu(total)


def _resize_matrix(out_size: int, in_size: int) -> Tensor:
    """(out, in) weights of tfjs ``resizeBilinear`` (no aligned corners, no half-pixel centres):
    output pixel i reads the input at i * in / out."""
    src = torch.arange(out_size, dtype=torch.float64) * (in_size / out_size)
    lo = src.floor().long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    frac = src - lo.double()
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    m[rows, lo] += 1 - frac
    m[rows, hi] += frac
    return m.float()


def resize_to_input(crops: Tensor) -> Tensor:
    """(N, 3, S, S) -> (N, 3, 112, 112) as face-api resizes a tensor input (unchanged at 112)."""
    size = crops.shape[-1]
    if size == INPUT_SIZE:
        return crops
    m = _resize_matrix(INPUT_SIZE, size).to(crops.device, crops.dtype)
    return torch.einsum("yi,ncij,xj->ncyx", m, crops, m)


class Landmarks68Net(nn.Module):
    """face-api's ``FaceLandmark68Net``: 112x112 RGB in [0, 255] -> 136 relative coordinates."""

    mean: Tensor

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        self.blocks = nn.Sequential(*(_DenseBlock(weights, n, i == 0)
                                      for i, n in enumerate(BLOCKS)))
        fc = weights["fc/weights"]  # (256, 136): x @ fc
        self.fc = nn.Linear(fc.shape[0], fc.shape[1])
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(fc).t())
            self.fc.bias.copy_(torch.from_numpy(weights["fc/bias"]))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 112, 112) -> (N, 136): x0, y0, x1, y1, ... as fractions of the input side."""
        out = self.blocks((x - self.mean) / DIVISOR)
        out = F.avg_pool2d(out, 7, 2)  # 7x7 -> 1x1, as face-api's 'valid' pool
        return self.fc(out.flatten(1))

    def locate(self, crops: Tensor) -> Tensor:
        """Aligned square crops (N, 3, S, S), RGB in [0, 255] -> (N, 68, 2) points (x, y) in
        the crop's pixels."""
        _check_crops(crops)
        size = crops.shape[-1]
        rel = self(resize_to_input(crops.float()))
        return rel.view(-1, N_POINTS, 2) * size


def _check_crops(crops: Tensor) -> None:
    if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2] != crops.shape[3]:
        raise InvalidArgument(f"expected square RGB crops (N, 3, S, S), got {tuple(crops.shape)}")


def load_landmarks68(root: Path | None = None) -> Landmarks68Net:
    """The net from the verified face-api files (AssetMissing/AssetCorrupt name the set-up
    command); frozen, in eval mode."""
    weights = read_tfjs_weights(assets.asset_path(WEIGHTS, root), assets.asset_path(MANIFEST, root))
    return Landmarks68Net(weights)


def landmarks68(crops: Tensor, net: Landmarks68Net | None = None,
                root: Path | None = None) -> Tensor:
    """68 landmarks (N, 68, 2) of aligned face crops (N, 3, S, S), RGB in [0, 255], in the crop's
    pixel frame. Loads the net when none is given (cheap: 350 kB); no gradient."""
    if net is None:
        net = load_landmarks68(root)
    with torch.no_grad():
        return net.locate(crops)
