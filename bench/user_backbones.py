"""Each built-in backbone exported with torch.onnx.export and registered as a user model: same
LFW 10-fold accuracy and the same occlusion/saliency maps as the built-in?

Registration runs in a temporary model home (linking the real model files), so the user's own
records stay untouched; LFW landmarks and embeddings use the real cache
(``~/.cache/facexplain/cache``: landmarks shared, embeddings keyed by the weights). The original
int8 SFace file is registered as-is too (checked against OpenCV, which runs it).
Usage: .venv/bin/python bench/user_backbones.py [--backbones sface,...] [--pairs 3]
       [--json docs/results/user_backbones.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.api import explain_pair
from facexplain.backbones.registry import SPECS, get_spec, load_backbone
from facexplain.backbones.user_add import add_onnx
from facexplain.benchmarks.lfw import LfwBenchmarkConfig, run_lfw_benchmark
from facexplain.datasets.lfw import read_pairs
from facexplain.method_info import ExplainOptions
from facexplain.pipeline import FacePipeline
from facexplain.scoring import get_calibration, save_calibration

REAL = settings.current()
INT8 = "sface/face_recognition_sface_2021dec_int8bq.onnx"


def linked_home(home: Path) -> None:
    for entry in REAL.home.iterdir():
        if entry.is_dir() and entry.name not in ("xcos", "cache", "_downloads", "records",
                                                 "user-backbones"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, home / entry.name)


def export(name: str, path: Path) -> Path:
    size = get_spec(name).input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(load_backbone(name), (torch.rand(1, 3, size, size) * 255,), str(path),
                          dynamo=False, input_names=["input"], output_names=["embedding"],
                          dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}})
    return path


def lfw(backbone: str) -> tuple[float, np.ndarray]:
    cfg = LfwBenchmarkConfig(backbone=backbone, cache_dir=REAL.cache)
    result = run_lfw_benchmark(cfg)
    return float(result.summary["accuracy_mean"]), result.scores  # type: ignore[arg-type]


def map_diffs(user: str, builtin: str, n_pairs: int) -> dict[str, float]:
    """Max |user map - built-in map| over ``n_pairs`` LFW pairs, per method and map, relative
    to the built-in map's largest magnitude."""
    pairs = read_pairs(REAL.lfw_pairs)
    chosen = [pairs[i] for i in np.linspace(0, len(pairs) - 1, n_pairs).astype(int)]
    options = ExplainOptions(patch=16, stride=8)
    pipes = FacePipeline(user), FacePipeline(builtin)
    worst: dict[str, float] = {}
    for p in tqdm(chosen, desc=f"maps {builtin}", leave=False):
        a, b = p.path_a(REAL.lfw_images), p.path_b(REAL.lfw_images)
        got, ref = (explain_pair(a, b, "occlusion,saliency", options=options, pipeline=pipe)
                    for pipe in pipes)
        for r_got, r_ref in zip(got.results, ref.results, strict=True):
            for name, values in r_ref.explanation.maps.items():
                if name not in r_got.explanation.maps:  # e.g. normalised by a stored Θ
                    worst.setdefault(f"{r_ref.method.name}/{name} (built-in only)", 0.0)
                    continue
                diff = float((r_got.explanation.maps[name] - values).abs().max())
                scale = float(values.abs().max()) or 1.0
                key = f"{r_ref.method.name}/{name}"
                worst[key] = max(worst.get(key, 0.0), diff / scale)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default=",".join([*SPECS, "sface-int8"]))
    ap.add_argument("--pairs", type=int, default=3, help="LFW pairs for the map comparison")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        linked_home(home)
        os.environ[settings.HOME_ENV] = str(home)
        names = args.backbones.split(",")
        jobs = [(name, export(name, Path(tmp) / f"{name}.onnx"), name)
                for name in names if name in SPECS]
        if "sface-int8" in names:  # the original int8 file, as-is
            jobs.append(("sface", REAL.home / INT8, "sface-int8"))
        for builtin, onnx_file, label in jobs:
            user = f"onnx-{label}"
            _, check = add_onnx(user, onnx_file, template=get_spec(builtin).template,
                                log=lambda m: tqdm.write(m))
            assert check is not None
            weights = FacePipeline(user, forward_runtime=False).scorer.fingerprint()
            save_calibration(get_calibration(builtin).__class__(  # keyed by the user's weights
                **{**get_calibration(builtin).__dict__, "backbone": user, "weights": weights}))
            row: dict[str, object] = {
                "backbone": label, "check_runtime": check.runtime,
                "check_max_abs_diff": check.max_abs_diff, "check_min_cosine": check.min_cosine,
                "lfw_builtin": None, "lfw_user": None, "lfw_score_max_abs_diff": None}
            if label == builtin:  # the int8 file computes the float model exactly: maps only
                acc_b, scores_b = lfw(builtin)
                acc_u, scores_u = lfw(user)
                row.update(lfw_builtin=acc_b, lfw_user=acc_u,
                           lfw_score_max_abs_diff=float(np.abs(scores_b - scores_u).max()))
                tqdm.write(f"LFW {builtin}: built-in {acc_b:.4f}, as user ONNX {acc_u:.4f}")
            row["map_max_rel_diff"] = map_diffs(user, builtin, args.pairs)
            rows.append(row)
            tqdm.write(json.dumps(row))
            if args.json:
                write_json(args, rows)
    print(f"\n{'backbone':<12} {'check vs':<22} {'max|d| emb':>10} {'LFW built-in':>12} "
          f"{'LFW user':>9} {'max|d| score':>12} {'max rel d map':>13}")

    def fmt(v: object, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for r in rows:
        maps = max(r["map_max_rel_diff"].values())  # type: ignore[attr-defined]
        # (maps the built-in has and the user model lacks are listed in the JSON with 0.0)
        print(f"{r['backbone']:<12} {r['check_runtime']:<22} {r['check_max_abs_diff']:>10.2e} "
              f"{fmt(r['lfw_builtin'], '.4f'):>12} {fmt(r['lfw_user'], '.4f'):>9} "
              f"{fmt(r['lfw_score_max_abs_diff'], '.2e'):>12} {maps:>13.2e}")
    if args.json:
        write_json(args, rows)


def write_json(args: argparse.Namespace, rows: list[dict[str, object]]) -> None:
    """Write (merging with rows of other backbones from earlier runs, by label)."""
    if args.json.is_file():
        old = json.loads(args.json.read_text())["rows"]
        labels = {r["backbone"] for r in rows}
        rows = [r for r in old if r["backbone"] not in labels] + rows
    out = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                      f"{torch.get_num_threads()} torch threads",
           "command": "python bench/user_backbones.py " + " ".join(
               f"--{k} {v}" for k, v in vars(args).items() if v is not None),
           "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")

if __name__ == "__main__":
    main()
