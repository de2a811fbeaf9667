"""The whole-map part of incremental occlusion on onnxruntime: worth choosing per stage?

From the level where a 16-px patch's region covers most of a map, incremental occlusion runs
the rest of the network on whole maps in eager torch, and that part bounds any exact method
(see ``occlusion_profile.py``). This script cuts each backbone there, exports the tail (the
stages from that level on) with ``torch.onnx.export`` and times it on onnxruntime against
eager torch on the same batch of maps (both faces of 32 windows: 64 maps), channels-last and
contiguous, alternating, best of N. A ratio above 1 would make onnxruntime the better runtime
for that part. Also printed: the whole network on the same batch of faces, whose ratio to the
tail is the ceiling of an exact method over full re-evaluation.
Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/occlusion_tail_runtime.py
       [--backbones sface,...] [--repeats 5] [--json out.json]
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
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from facexplain.backbones.registry import SPECS, get_spec, load_backbone
from facexplain.explain.incremental import FULL_MAP_FRACTION, IncrementalEmbedder, _crop_axis

BATCH = 64


class Chain(torch.nn.Module):
    """Stages run one after the other, as one module that ``torch.onnx.export`` can trace."""

    def __init__(self, stages: list[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        super().__init__()
        self.stages = stages

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            t = stage(t)
        return t


def switch_level(embedder: IncrementalEmbedder, size: int, patch: int = 16) -> int:
    """The level where a centred patch's crop first covers most of the map (as ``embed``)."""
    starts, extent = np.array([size // 2]), patch
    for level, group in enumerate(embedder.groups):
        n_in, n_out = embedder.maps[level].shape[2], embedder.maps[level + 1].shape[2]
        crop = _crop_axis(group.y, starts, extent, n_in, n_out)
        if crop is None or crop[3] ** 2 > FULL_MAP_FRACTION * n_in * n_in:
            return level
        starts, extent = crop[0], crop[1]
    return len(embedder.groups)


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(name: str, repeats: int) -> dict[str, Any]:
    size = get_spec(name).input_size
    model = load_backbone(name)
    faces = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    embedder = IncrementalEmbedder(model, faces)
    level = switch_level(embedder, size)
    tail = Chain([*embedder.groups[level:], *embedder._rest])
    clean = embedder.maps[level]
    maps = clean.repeat_interleave(BATCH // 2, 0) * (1 + 0.01 * torch.randn(BATCH, 1, 1, 1))
    maps_cl = maps.contiguous(memory_format=torch.channels_last)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(tail, (maps[:1],), buffer, dynamo=False, opset_version=17,  # type: ignore[arg-type]
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.log_severity_level = 3
    session = ort.InferenceSession(buffer.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": np.ascontiguousarray(maps.numpy())}
    batch = faces.repeat_interleave(BATCH // 2, 0)
    with torch.inference_mode():
        expected = tail(maps).numpy()
        got = session.run(["y"], feed)[0]
        times: dict[str, list[float]] = {"torch_cl": [], "torch": [], "onnxruntime": [],
                                         "full_network": []}
        for _ in range(repeats):  # alternate, so drifting load hits all alike
            times["torch_cl"].append(best(lambda: tail(maps_cl), 1))
            times["torch"].append(best(lambda: tail(maps), 1))
            times["onnxruntime"].append(best(lambda: session.run(["y"], feed), 1))
            times["full_network"].append(best(lambda: model(batch), 1))
    t = {k: min(v) for k, v in times.items()}
    torch_best = min(t["torch_cl"], t["torch"])
    return {"backbone": name, "level": level, "of": len(embedder.groups),
            "map": list(clean.shape[1:]), "batch": BATCH,
            **{f"{k}_s": round(v, 4) for k, v in t.items()},
            "torch_best_s": round(torch_best, 4),
            "onnxruntime_speedup": round(torch_best / t["onnxruntime"], 2),
            "exact_ceiling_full_over_tail": round(t["full_network"] / torch_best, 2),
            "max_rel_diff": float(np.abs(got - expected).max() / np.abs(expected).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default=",".join(SPECS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    print(f"{'backbone':<12} {'level':>7} {'map':>14} {'torch s':>8} {'ort s':>8} "
          f"{'ort speed-up':>12} {'full s':>7} {'full/tail':>9} {'max rel d':>9}")
    for name in args.backbones.split(","):
        r = measure(name, args.repeats)
        rows.append(r)
        print(f"{name:<12} {r['level']:>3}/{r['of']:<3} {str(tuple(r['map'])):>14} "
              f"{r['torch_best_s']:>8.4f} {r['onnxruntime_s']:>8.4f} "
              f"{r['onnxruntime_speedup']:>12.2f} {r['full_network_s']:>7.4f} "
              f"{r['exact_ceiling_full_over_tail']:>9.2f} {r['max_rel_diff']:>9.1e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": f"{platform.machine()}, torch {torch.__version__}, "
                       f"onnxruntime {ort.__version__}, {torch.get_num_threads()} threads",
            "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
