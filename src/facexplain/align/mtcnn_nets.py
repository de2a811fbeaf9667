"""The three MTCNN networks in torch (the facenet-pytorch 2.6.0 weights), and their set-up export.

Why a module of their own: detection (``align.detect``) runs the cascade in numpy and the nets
on onnxruntime, from graphs exported here at set-up (``runtime/mtcnn-<net>-v1.onnx``, checked
against these modules before they are kept), so a cold ``verify`` never imports torch. These
modules stay the source of truth, and run the cascade themselves where a model home has no
exported graphs yet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facexplain import assets
from facexplain.align.mtcnn_files import WEIGHTS
from facexplain.onnxrt import export_checked

# Layer names match the facenet-pytorch state dicts exactly.


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


NETS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}
# Input shape used for the export and its check; dynamic axes make any batch (and any P-Net
# image size) valid.
_PROBE = {"pnet": (2, 3, 31, 37), "rnet": (5, 3, 24, 24), "onet": (5, 3, 48, 48)}
_OUTPUTS = {"pnet": ["offsets", "prob"], "rnet": ["offsets", "prob"],
            "onet": ["offsets", "landmarks", "prob"]}


def load_net(name: str, root: Path | None = None) -> nn.Module:
    """One net with its verified weights (``mtcnn/<name>.pt``), eval mode, frozen."""
    state = torch.load(assets.asset_path(WEIGHTS[name], root), map_location="cpu",
                       weights_only=True)
    net = NETS[name]()
    net.load_state_dict(state)
    for conv in net.modules():
        if isinstance(conv, nn.Conv2d):  # CPU max-pooling is ~10x faster channels_last
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    return net.eval().requires_grad_(False)


def torch_runner(name: str, root: Path | None = None):  # type: ignore[no-untyped-def]
    """The torch net as the cascade calls it: float32 NCHW array in, arrays out."""
    net = load_net(name, root)

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            return [o.numpy() for o in net(t)]

    return run


def build_net_runtime(root: Path, name: str) -> None:
    """Set-up builder of ``runtime/mtcnn-<net>-vN.onnx``: one net, exported and checked."""
    net_name = Path(name).name.split("-")[1]
    probe = torch.rand(*_PROBE[net_name], generator=torch.Generator().manual_seed(0)) * 2 - 1
    dynamic = {o: {0: "N"} for o in _OUTPUTS[net_name]}
    if net_name == "pnet":  # any image size
        dynamic["input"] = {0: "N", 2: "H", 3: "W"}
    export_checked(load_net(net_name, root), probe, root, name, _OUTPUTS[net_name], dynamic)
