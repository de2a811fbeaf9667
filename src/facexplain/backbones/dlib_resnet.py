"""dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1) as a torch module.

The weights come from the TF.js files shipped by npm ``@vladmandic/face-api`` (uint8-quantised
tensors plus a few float32 ones, filters in HWIO). The network is written out by hand rather
than run through a graph executor: it is small and fixed, and a hand-written module lets the
per-channel ``scale`` layers fold into the convolutions for speed.

Normalisation follows dlib (``(x - mean) / 256``); face-api divides by 255 instead, which is
a slight deviation from the model dlib trained, so the reference check rescales its input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel, Stage, unknown_nodes
from facexplain.backbones.padding import grow_to

MEAN_RGB = (122.782, 117.001, 104.298)
SCALE_DIVISOR = 256.0

# Residual blocks in order; ``True`` marks a down block (stride-2 conv, pooled shortcut).
BLOCKS: tuple[tuple[str, bool], ...] = (
    ("conv32_1", False), ("conv32_2", False), ("conv32_3", False),
    ("conv64_down", True), ("conv64_1", False), ("conv64_2", False), ("conv64_3", False),
    ("conv128_down", True), ("conv128_1", False), ("conv128_2", False),
    ("conv256_down", True), ("conv256_1", False), ("conv256_2", False),
    ("conv256_down_out", True),
)

# Named spatial maps: the output of the last block of each stage (shape at 150x150 input).
NODE_AFTER_BLOCK: dict[str, str] = {
    "conv32": "conv32_3",  # 32 x 35 x 35
    "conv64": "conv64_3",  # 64 x 17 x 17
    "conv128": "conv128_2",  # 128 x 8 x 8
    "conv256": "conv256_2",  # 256 x 4 x 4
    "conv256_out": "conv256_down_out",  # 256 x 2 x 2
}
NODES: tuple[str, ...] = (*NODE_AFTER_BLOCK, EMBEDDING)


def _scaled_conv(
    w: dict[str, np.ndarray], prefix: str, stride: int, padding: int
) -> nn.Conv2d:
    """Conv + bias + per-channel scale/shift folded into one conv (one pass over memory)."""
    filters = torch.from_numpy(w[f"{prefix}/conv/filters"]).double()  # HWIO
    bias = torch.from_numpy(w[f"{prefix}/conv/bias"]).double()
    gamma = torch.from_numpy(w[f"{prefix}/scale/weights"]).double()
    beta = torch.from_numpy(w[f"{prefix}/scale/biases"]).double()
    kh, kw, cin, cout = filters.shape
    conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=padding)
    weight = (filters.permute(3, 2, 0, 1) * gamma[:, None, None, None]).float()
    # channels_last weights: with channels_last activations, oneDNN avoids reorders.
    conv.weight = nn.Parameter(weight.contiguous(memory_format=torch.channels_last))
    conv.bias = nn.Parameter((bias * gamma + beta).float())
    return conv


class _Block(nn.Module):
    """dlib residual block; a down block halves the map and may double the channels."""

    def __init__(self, w: dict[str, np.ndarray], name: str, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = _scaled_conv(w, f"{name}/conv1", stride=2 if down else 1,
                                  padding=0 if down else 1)
        self.conv2 = _scaled_conv(w, f"{name}/conv2", stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        # The valid stride-2 conv can come out one pixel short: zeros at bottom/right.
        out = grow_to(out, shortcut.shape[2], shortcut.shape[3])
        c = shortcut.shape[1]
        if out.shape[1] != c:
            # Width doubles: the shortcut carries zeros in the new channels.
            return F.relu(torch.cat([out[:, :c] + shortcut, out[:, c:]], dim=1))
        return F.relu(out + shortcut)


class DlibResNet(FaceModel):
    """dlib ResNet (29 conv layers): 150x150 RGB in [0, 255] -> 128-d, not normalised."""

    mean: torch.Tensor

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        mean = torch.tensor(MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.stem = _scaled_conv(weights, "conv32_down", stride=2, padding=0)
        self.blocks = nn.ModuleDict({n: _Block(weights, n, d) for n, d in BLOCKS})
        fc = torch.from_numpy(weights["fc"])  # (256, 128): x @ fc
        self.fc = nn.Linear(fc.shape[0], fc.shape[1], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(fc.t())
        self._node_of_block = {b: n for n, b in NODE_AFTER_BLOCK.items()}
        self.requires_grad_(False)  # frozen like every backbone; requires_grad_() to fine-tune

    def node_names(self) -> tuple[str, ...]:
        return (EMBEDDING, *NODE_AFTER_BLOCK)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - self.mean) / SCALE_DIVISOR).contiguous(memory_format=torch.channels_last)
        return F.max_pool2d(F.relu(self.stem(x)), 3, 2)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))

    def stages(self) -> list[Stage]:
        return [self._stem, *self.blocks.values(), self._head]

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        unknown = [n for n in nodes if n not in NODES]
        if unknown:
            raise unknown_nodes(unknown, self.node_names())
        wanted = set(nodes)
        found: dict[str, torch.Tensor] = {}
        out = self._stem(x)
        for name, block in self.blocks.items():
            if len(found) == len(wanted):
                break  # nothing more requested: skip the rest of the network
            out = block(out)
            node = self._node_of_block.get(name)
            if node is not None and node in wanted:
                found[node] = out
        if EMBEDDING in wanted:
            found[EMBEDDING] = self._head(out)
        return {n: found[n] for n in nodes}
