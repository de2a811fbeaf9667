"""The 68-point landmark net forward-only on onnxruntime, so a verdict's photo-quality check
(pose, occlusion) does not import torch.

Why: ``verify`` runs on numpy and onnxruntime only (a cold start must not pay for torch), but
pose and per-component occlusion need the 68 points. Set-up exports ``align.landmarks68``'s
module once (``runtime/landmarks68-vN.onnx``, checked against the torch module like every
export); the resize to the net's 112 px input is the module's own matrix product, in numpy.
Without the exported file (a model home set up before it existed) the torch net is used.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from facexplain import assets, settings
from facexplain.align.landmarks68_files import RUNTIME
from facexplain.errors import AssetMissing, InvalidArgument

INPUT_SIZE = 112
N_POINTS = 68


def build_landmarks_runtime(root: Path, name: str) -> None:
    """Set-up builder of ``runtime/landmarks68-vN.onnx``: the torch module, exported and checked."""
    import torch

    from facexplain.align.landmarks68 import load_landmarks68
    from facexplain.onnxrt import OUTPUT, export_checked

    probe = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE,
                       generator=torch.Generator().manual_seed(0)) * 255
    export_checked(load_landmarks68(root), probe, root, name, [OUTPUT], {OUTPUT: {0: "N"}})


def _resize_matrix(out_size: int, in_size: int) -> np.ndarray:
    """Bilinear weights without half-pixel centres (tfjs ``resizeBilinear``), as the module's."""
    m = np.zeros((out_size, in_size), dtype=np.float32)
    scale = in_size / out_size
    for i in range(out_size):
        src = i * scale
        lo = min(int(np.floor(src)), in_size - 1)
        hi = min(lo + 1, in_size - 1)
        frac = src - lo
        m[i, lo] += 1 - frac
        m[i, hi] += frac
    return m


@cache
def _session(path: str, threads: int):  # type: ignore[no-untyped-def]
    from facexplain.onnxrt import ort_session

    return ort_session(Path(path), threads)


def locate_landmarks(crops: np.ndarray, root: Path | None = None) -> np.ndarray:
    """68 landmarks (N, 68, 2) of aligned square crops (N, 3, S, S), RGB in [0, 255], in the
    crop's pixels: the exported net when set-up made it, else the torch module."""
    x = np.asarray(crops, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise InvalidArgument(f"expected square RGB crops (N, 3, S, S), got {x.shape}")
    size = x.shape[-1]
    root = root or assets.home()
    try:
        path = assets.asset_path(RUNTIME.name, root)
    except AssetMissing:
        import torch

        from facexplain.align.landmarks68 import landmarks68

        return landmarks68(torch.from_numpy(x), root=root).numpy()
    if size != INPUT_SIZE:
        m = _resize_matrix(INPUT_SIZE, size)
        x = np.matmul(m, np.matmul(x, m.T)).astype(np.float32)  # rows then columns
    from facexplain.onnxrt import OUTPUT

    rel = _session(str(path), settings.cpu_threads()).run([OUTPUT], {"input": x})[0]
    return np.asarray(rel, dtype=np.float64).reshape(-1, N_POINTS, 2) * size
