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

import warnings
from pathlib import Path

import numpy as np

from facexplain import assets
from facexplain.errors import AssetMissing

OPSET = 17
INPUT, OUTPUT = "input", "embedding"
# The exported graph must give the module's embedding to this (relative to its largest value).
EXPORT_TOLERANCE = 1e-4


def export_checked(module, probe, root: Path, name: str,  # type: ignore[no-untyped-def]
                   outputs: list[str], dynamic: dict[str, dict[int, str]]) -> None:
    """Export ``module`` (torch) to the derived file ``name``, run the file on onnxruntime on
    ``probe`` and keep it only if every output matches the module's to EXPORT_TOLERANCE
    (relative to its largest value); its sha256 is recorded like every derived file."""
    import torch

    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.part")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (probe[:1],), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=outputs,
                          dynamic_axes={INPUT: {0: "N"}, **dynamic})
        expected = module(probe)
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    got = ort_session(tmp, 1).run(outputs, {INPUT: probe.numpy()})
    err = max(float(np.abs(g - e).max() / max(np.abs(e).max(), 1e-12))
              for g, e in zip(got, expected, strict=True))
    if err > EXPORT_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"exported {name} differs from its torch module by {err:.1e}")
    assets.install_derived(tmp, name, root)


def build_runtime(root: Path, name: str) -> None:
    """Set-up builder of ``runtime/<backbone>-vN.onnx``: the backbone's module, exported."""
    import torch

    from facexplain.backbones.registry import get_spec, load_backbone

    backbone = Path(name).name.rsplit("-v", 1)[0]
    size = get_spec(backbone).input_size
    probe = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    export_checked(load_backbone(backbone, root), probe, root, name, [OUTPUT],
                   {OUTPUT: {0: "N"}})


def ort_session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    """A CPU onnxruntime session of one graph file, quiet, with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class ForwardRuntime:
    """An onnxruntime session of one exported backbone: (N, 3, H, W) pixels -> (N, D) embeddings."""

    def __init__(self, path: Path, threads: int) -> None:
        self.path = path
        self.session = ort_session(path, threads)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        feed = {INPUT: np.ascontiguousarray(pixels, dtype=np.float32)}
        return np.asarray(self.session.run([OUTPUT], feed)[0])


def load_runtime(backbone: str, root: Path, threads: int) -> ForwardRuntime | None:
    """The backbone's verified runtime, or None where it has none (torch is then used).

    A present but damaged or altered file raises ``AssetCorrupt`` like any model file.
    """
    name = assets.runtime_name(backbone)
    if name not in assets.DERIVED:
        return None
    try:
        path = assets.asset_path(name, root)
    except AssetMissing:
        return None
    return ForwardRuntime(path, threads)


def runtime_key(backbone: str, root: Path) -> str:
    """What an embedding computed by the runtime depends on: its file's recorded sha256."""
    return assets.recorded_sha256(assets.runtime_name(backbone), root)
