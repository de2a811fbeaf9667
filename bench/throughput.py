"""Embedding throughput per backbone (images/s, batch 32, 2 threads), with onnxruntime as reference.

Each backbone's torch module is exported to ONNX (TorchScript exporter) and run by onnxruntime
on the same batch in the same process, so the ratio is independent of the machine's speed.
Usage: .venv/bin/python bench/throughput.py [--backbones sface,...] [--batches 5]
"""

from __future__ import annotations

import argparse
import io
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from facexplain.backbones.registry import SPECS, load_backbone

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "lfw-deepfunneled"
THREADS = 2
BATCH = 32


def real_batch(size: int, n: int = BATCH) -> torch.Tensor:
    """The central part of the first n LFW photos, resized to the model's input size."""
    files = sorted(LFW.glob("*/*.jpg"))[:n]
    arrays = [
        np.asarray(Image.open(f).convert("RGB").crop((60, 60, 190, 190)).resize((size, size)))
        for f in files
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().contiguous()


def interleaved_seconds(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median time of each function, runs interleaved so machine load hits all of them alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def onnx_session(model: torch.nn.Module, x: torch.Tensor) -> ort.InferenceSession:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, input_names=["x"],
                          output_names=["embedding"], dynamic_axes={"x": {0: "n"}},
                          opset_version=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", default=",".join(SPECS))
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch threads {THREADS}, "
          f"batch {BATCH}, torch {torch.__version__}, onnxruntime {ort.__version__}")
    print(f"{'backbone':<12} {'torch img/s':>12} {'ort img/s':>10} {'torch/ort':>10} "
          f"{'max|diff|':>10}")
    for name in args.backbones.split(","):
        spec = SPECS[name]
        model = load_backbone(name)
        x = real_batch(spec.input_size)
        with torch.inference_mode():
            ref = model(x).numpy()
            sess = onnx_session(model, x)
            feed = {"x": x.numpy()}
            t_torch, t_ort = interleaved_seconds(
                [lambda: model(x), lambda: sess.run(None, feed)], args.batches  # noqa: B023
            )
        diff = float(np.abs(sess.run(None, feed)[0] - ref).max())
        print(f"{name:<12} {BATCH / t_torch:>12.1f} {BATCH / t_ort:>10.1f} "
              f"{t_ort / t_torch:>10.2f} {diff:>10.1e}")


if __name__ == "__main__":
    main()
