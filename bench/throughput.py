"""Embedding throughput per backbone (images/s, 2 threads), batch 32 and 1: eager torch, the
forward-only path (``FacePipeline.embed``) and onnxruntime as the reference.

The reference is onnxruntime on the same model built independently in this process: sface's
original float graph (the wheel's int8 file dequantised, ``sface_float.onnx``), and for the
backbones that ship no ONNX (dlib-resnet, faceres, mobileface) a fresh ``torch.onnx.export``
of the torch module. All three run on the same real batch, interleaved in one process, so the
ratios do not depend on the machine's speed.
Usage: .venv/bin/python bench/throughput.py [--backbones sface,...] [--batches 5]
       [--sizes 32,1] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from facexplain import assets
from facexplain.backbones.registry import SPECS
from facexplain.pipeline import FacePipeline

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "lfw-deepfunneled"
THREADS = 2


def real_batch(size: int, n: int) -> torch.Tensor:
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


def _options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    return opts


def reference_session(name: str, model: torch.nn.Module, x: torch.Tensor
                      ) -> tuple[ort.InferenceSession, str]:
    if name == "sface":
        path = assets.asset_path("sface/sface_float.onnx")
        return ort.InferenceSession(str(path), _options(), providers=["CPUExecutionProvider"]), \
            "original graph"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), buf, dynamo=False, input_names=["x"],
                          output_names=["embedding"], dynamic_axes={"x": {0: "n"}},
                          opset_version=17)
    return ort.InferenceSession(buf.getvalue(), _options(), providers=["CPUExecutionProvider"]), \
        "fresh export"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", default=",".join(SPECS))
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--sizes", default="32,1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {THREADS} threads, "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}")
    print(f"{'backbone':<12} {'batch':>5} {'torch':>8} {'ours':>8} {'ort':>8} {'ours/ort':>9} "
          f"{'torch/ort':>9} {'max|diff|':>9}  reference")
    rows = []
    for name in args.backbones.split(","):
        pipe = FacePipeline(name)
        if pipe.runtime() is None:
            raise SystemExit(f"{name} has no forward-only runtime: run make setup")
        model = pipe.model
        for n in (int(s) for s in args.sizes.split(",")):
            x = real_batch(pipe.spec.input_size, n)
            sess, ref_kind = reference_session(name, model, x)
            feed = {sess.get_inputs()[0].name: x.numpy()}
            with torch.inference_mode():
                ref = model(x).numpy()
                t_torch, t_ours, t_ort = interleaved_seconds(
                    [lambda: model(x), lambda: pipe.embed(x, batch_size=n),  # noqa: B023
                     lambda: sess.run(None, feed)], args.batches * max(1, 32 // n))  # noqa: B023
                ours = pipe.embed(x, batch_size=n).numpy()
            diff = float(np.abs(ours - ref).max())
            row = {"backbone": name, "batch": n, "torch_img_s": n / t_torch,
                   "ours_img_s": n / t_ours, "ort_img_s": n / t_ort,
                   "ours_over_ort": t_ort / t_ours, "torch_over_ort": t_ort / t_torch,
                   "max_abs_diff": diff, "reference": ref_kind}
            rows.append(row)
            print(f"{name:<12} {n:>5} {row['torch_img_s']:>8.1f} {row['ours_img_s']:>8.1f} "
                  f"{row['ort_img_s']:>8.1f} {row['ours_over_ort']:>9.2f} "
                  f"{row['torch_over_ort']:>9.2f} {diff:>9.1e}  {ref_kind}")
    if args.json:
        args.json.write_text(json.dumps({"threads": THREADS, "torch": torch.__version__,
                                         "onnxruntime": ort.__version__, "rows": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
