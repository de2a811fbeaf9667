"""Registered -> first verdict: the wall time of ``facexplain backbones add`` (checks,
normalisation search, runtime check, provisional calibration on LFW folds 1-2) and of the first
``facexplain verify`` with the new name, for each built-in's runtime file registered as a user
model without normalisation flags, in a temporary model home (the model files linked, none of
the user's records; LFW's face detections cached, the embeddings not: each file gets one
weight moved by 1e-6, so nothing an earlier run embedded applies). Run it on an idle machine.
Usage: .venv/bin/python bench/user_registration.py [--backbones sface,mobileface]
       [--json docs/results/user-registration.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facexplain import settings
from facexplain.backbones.registry import get_spec
from facexplain.datasets.lfw import read_pairs

FACEXPLAIN = Path(sys.executable).parent / "facexplain"


def model_home() -> Path:
    real = settings.current().home
    home = Path(tempfile.mkdtemp(prefix="user-registration-"))
    for entry in real.iterdir():
        if entry.is_dir() and entry.name not in ("cache", "records", "user-backbones", "xcos"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, home / entry.name)
    (home / "cache").symlink_to(real / "cache")  # the LFW face cache: detection is not timed
    return home


def fresh_copy(src: Path, folder: Path) -> Path:
    """The same model with one weight moved by 1e-6: a new fingerprint, so no embedding cached
    by an earlier run applies and the registration pays for every face, as a new model does."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    for i, init in enumerate(model.graph.initializer):
        values = numpy_helper.to_array(init)
        if values.dtype == np.float32 and values.size > 1:
            moved = values.copy()
            moved.flat[0] += 1e-6
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(moved, init.name))
            break
    out = folder / src.name
    onnx.save(model, str(out))
    return out


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:4])} failed: {done.stderr.strip()[-400:]}")
    return took, done.stdout + done.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbones", default="sface,mobileface")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    real = settings.current().home
    pair = read_pairs(settings.current().lfw_pairs)[0]
    images = settings.current().lfw_images
    env = {**os.environ, settings.HOME_ENV: str(model_home())}
    rows = []
    for name in args.backbones.split(","):
        spec = get_spec(name)
        user = f"user-{name}"
        model = fresh_copy(real / "runtime" / f"{name}-v1.onnx", Path(env[settings.HOME_ENV]))
        add_s, add_out = timed([str(FACEXPLAIN), "backbones", "add", user, "--onnx", str(model),
                                "--template", spec.template], env)
        verify_s, verify_out = timed([str(FACEXPLAIN), "verify", str(pair.path_a(images)),
                                      str(pair.path_b(images)), "--backbone", user], env)
        lines = [ln for ln in add_out.splitlines()
                 if "normalisation" in ln or "provisional threshold" in ln]
        rows.append({"backbone": name, "add_s": round(add_s, 1), "first_verify_s":
                     round(verify_s, 1), "registered_to_verdict_s": round(add_s + verify_s, 1),
                     "add_said": lines, "verdict": verify_out.strip().splitlines()[:3]})
        print(json.dumps(rows[-1], indent=1), flush=True)
    doc = {"rows": rows, "date": time.strftime("%Y-%m-%d"),
           "command": f"bench/user_registration.py --backbones {args.backbones}"}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
