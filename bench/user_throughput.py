"""Forward throughput of a registered user ONNX model (``FacePipeline.embed``: its stored copy
on onnxruntime, normalisation in numpy) against onnxruntime on the same file fed directly, and
against the torch executor the explanations use.

Each built-in's exported runtime file is registered as a user model in a temporary model home
(the normalisation found on real faces: the identity); the three paths run on the same real
batch, interleaved in one process, so the ratios do not depend on the machine's load.
Usage: .venv/bin/python bench/user_throughput.py [--backbones sface,mobileface] [--batches 5]
       [--json docs/results/user-throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from facexplain import settings
from facexplain.backbones.registry import get_spec
from facexplain.backbones.user_add import add_onnx
from facexplain.pipeline import FacePipeline

THREADS = 2


def _timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm
    best = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t)
    return float(np.median(best))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbones", default="sface,mobileface")
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    real_home = settings.current().home
    home = Path(tempfile.mkdtemp(prefix="user-throughput-"))
    for entry in real_home.iterdir():  # the model files, none of the user's records
        if entry.is_dir() and entry.name not in ("cache", "records", "user-backbones", "xcos"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, home / entry.name)
    os.environ[settings.HOME_ENV] = str(home)
    rows = []
    for name in args.backbones.split(","):
        spec = get_spec(name)
        row, _ = add_onnx(f"user-{name}", real_home / "runtime" / f"{name}-v1.onnx",
                          template=spec.template, skip_check=True)
        pipe = FacePipeline(f"user-{name}")
        x = torch.rand(32, 3, spec.input_size, spec.input_size,
                       generator=torch.Generator().manual_seed(0)) * 255
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = THREADS, 1
        sess = ort.InferenceSession(str(home / "user-backbones" / row["file"]), opts,
                                    providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x.numpy()}
        direct = _timed(lambda: sess.run(None, feed), args.batches)  # noqa: B023
        ours = _timed(lambda: pipe.embed(x), args.batches)  # noqa: B023
        with torch.inference_mode():
            eager = _timed(lambda: pipe.model(x), max(1, args.batches // 2))  # noqa: B023
        rows.append({"backbone": name, "images_per_s": {
            "onnxruntime_direct": round(32 / direct, 1), "user_model_embed": round(32 / ours, 1),
            "torch_executor": round(32 / eager, 1)},
            "user_vs_direct": round(direct / ours, 3), "normalisation": row["mean"]})
        print(rows[-1])
    doc = {"rows": rows, "batch": 32, "threads": THREADS, "machine": platform.machine(),
           "command": "bench/user_throughput.py " + args.backbones}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
