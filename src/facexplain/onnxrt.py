"""onnxruntime helpers shared by the detector and the backbones: sessions, checked exports.

Why a leaf module: MTCNN (``align``) and the backbones both export torch modules at set-up and
run them forward-only on onnxruntime; the helpers used to live in ``backbones.runtime``, so the
detector imported the model layer above it. The torch module stays the source of truth: an
export is kept only if onnxruntime gives the module's outputs (``export_checked``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facexplain import assets

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

    def __init__(self, path: Path, threads: int, output: str = OUTPUT,
                 preprocess: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.path = path
        self.session = ort_session(path, threads)
        self.input = self.session.get_inputs()[0].name
        self.output = output
        self.preprocess = preprocess

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(pixels, dtype=np.float32)
        if self.preprocess is not None:
            x = np.ascontiguousarray(self.preprocess(x), dtype=np.float32)
        out = np.asarray(self.session.run([self.output], {self.input: x})[0])
        return out.reshape(out.shape[0], -1)


# Bump the version when the export changes: an older file is then simply not found.
RUNTIME_VERSION = 1


def runtime_name(model: str) -> str:
    """The derived file of ``model``'s exported graph, relative to the model home."""
    return f"runtime/{model}-v{RUNTIME_VERSION}.onnx"
