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

from facexplain import assets
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.errors import AssetMissing
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
    if not get_spec(backbone).runtime:
        return None
    name = runtime_name(backbone)
    try:
        path = assets.asset_path(name, root)
    except AssetMissing:
        return None
    return ForwardRuntime(path, threads)


def runtime_key(backbone: str, root: Path) -> str:
    """What an embedding computed by the runtime depends on: its file's recorded sha256."""
    return assets.recorded_sha256(runtime_name(backbone), root)
