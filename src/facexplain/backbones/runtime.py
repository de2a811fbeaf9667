"""Forward-only runtime: the backbone's embedding on onnxruntime, where no gradient is needed.

Why: verification, ``benchmark lfw`` and ``batch verify`` only embed faces, and onnxruntime runs
the same graphs 1.1x (sface) to 6x (mobileface) faster than eager torch on this CPU. The torch
module stays the source of truth: at set-up each built-in module is exported with
``torch.onnx.export`` into the model home (``runtime/<name>-v<N>.onnx``, sha256 recorded like
every derived file), checked against the module before it is kept, and loaded here without
importing ``onnx`` or building the torch graph, which also shortens a cold ``verify``.
A missing runtime file (a model home set up before it existed, a user model) means torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facexplain import assets
from facexplain.backbones import user_records
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.backbones.user_records import three_values as user_three
from facexplain.errors import AssetCorrupt, AssetMissing
from facexplain.onnxrt import OUTPUT, ForwardRuntime, export_checked, runtime_name


def build_runtime(root: Path, name: str) -> None:
    """Set-up builder of ``runtime/<backbone>-vN.onnx``: the backbone's module, exported."""
    import torch  # set-up only: verification runs the exported file without torch

    backbone = Path(name).name.rsplit("-v", 1)[0]
    size = get_spec(backbone).input_size
    probe = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    export_checked(load_backbone(backbone, root), probe, root, name, [OUTPUT],
                   {OUTPUT: {0: "N"}})


def load_runtime(backbone: str, root: Path, threads: int) -> ForwardRuntime | None:
    """The backbone's verified runtime, or None where it has none (torch is then used).

    A present but damaged or altered file raises ``AssetCorrupt`` like any model file.
    """
    spec = get_spec(backbone)
    if spec.user:
        return user_runtime(backbone, root, threads)
    if not spec.runtime:
        return None
    name = runtime_name(backbone)
    try:
        path = assets.asset_path(name, root)
    except AssetMissing:
        return None
    return ForwardRuntime(path, threads)


def user_runtime(backbone: str, root: Path, threads: int) -> ForwardRuntime | None:
    """A registered user ONNX file on onnxruntime, its normalisation applied in numpy; the file
    was checked against the torch executor at registration and is checked by sha256 here."""
    row = user_records.read_records(root).get(backbone)
    if row is None:  # a torch module registered from Python: torch it is
        return None
    path = user_records.user_dir(root) / str(row["file"])
    if not path.is_file():
        return None
    if assets.sha256_of(path) != row["sha256"]:
        raise AssetCorrupt(f"{path}: sha256 differs from the one recorded at registration")
    mean = np.array(user_three(row.get("mean", [0.0])), dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(user_three(row.get("std", [1.0])), dtype=np.float32).reshape(1, 3, 1, 1)
    bgr = bool(row.get("bgr"))

    def preprocess(x: np.ndarray) -> np.ndarray:
        return ((x[:, ::-1] if bgr else x) - mean) / std

    return ForwardRuntime(path, threads, str(row["output"]), preprocess)


def runtime_key(backbone: str, root: Path) -> str:
    """What an embedding computed by the runtime depends on: its file's recorded sha256."""
    if get_spec(backbone).user:
        return str(user_records.read_records(root)[backbone]["sha256"])
    return assets.recorded_sha256(runtime_name(backbone), root)
