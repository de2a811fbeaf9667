"""The model check of `facexplain backbones add` on the built-in backbones and on models that
cannot tell people apart: for each, the numbers the check measures (output variation, spread of
different people's cosines, AUC and d' of same- against different-person cosines) on the
registration's 55 faces (the normalisation search's 10 plus both photos of the first 3
same-person pairs of each LFW fold), the same numbers on the search's 10 faces alone, and
whether registration accepts it.

Each model is registered with ``add_onnx(..., force=True, skip_check=True)`` in a temporary
model home (the model files linked, nothing of the user's), so a refused model's numbers are
recorded too; "refused" is the check's one-line reason. The bad models are the ones the tests
build (tests/integration/test_user_model_refusals.py). Seconds are wall time per registration
with the faces' detections cached, on a shared machine: indicative only.
Usage: .venv/bin/python bench/model_checks.py [--json docs/results/model-checks.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facexplain import settings  # noqa: E402
from facexplain.backbones.registry import get_spec  # noqa: E402
from facexplain.benchmarks.registry import machine, stamp  # noqa: E402

BUILTINS = ("sface", "mobileface", "faceres", "dlib-resnet")


def model_home() -> Path:
    real = settings.current().home
    home = Path(tempfile.mkdtemp(prefix="model-checks-"))
    for entry in real.iterdir():
        if entry.is_dir() and entry.name not in ("cache", "records", "user-backbones", "xcos"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, home / entry.name)
    return home


def bad_models(folder: Path) -> list[tuple[str, Path, str]]:
    from tests.integration.test_user_model_refusals import (
        Constant,
        IgnoresInput,
        NearConstant,
        RandomProjection,
        export,
    )

    out = []
    for label, module in (("constant (x * 0 + b)", Constant),
                          ("ignores the input (batch size only)", IgnoresInput),
                          ("near-constant (b + 0.1 * projection)", NearConstant),
                          ("random projection of the pixels", RandomProjection)):
        torch.manual_seed(0)
        out.append((label, export(module(), folder / f"{module.__name__}.onnx"), "arcface-112"))
    return out


def search_faces(name: str) -> dict[str, Any]:
    """The check's numbers on the normalisation search's faces alone (no fold slice)."""
    from facexplain.backbones.registry import load_backbone
    from facexplain.backbones.user_checks import (
        NORMALISATION_FACES,
        check_faces,
        default_check_images,
    )
    from facexplain.backbones.user_quality import measure

    images = default_check_images(NORMALISATION_FACES)
    faces = check_faces(get_spec(name).alignment, images)
    with torch.no_grad():
        emb = load_backbone(name)(faces)
    return measure(emb, [p.parent.name for p in images]).to_json()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    real = settings.current().home
    home = model_home()
    os.environ[settings.HOME_ENV] = str(home)
    from facexplain.backbones.user_add import add_onnx

    models = [(f"{b} (built-in runtime file)", real / "runtime" / f"{b}-v1.onnx",
               get_spec(b).template) for b in BUILTINS]
    models += bad_models(home)
    rows = []
    for i, (label, path, template) in enumerate(models):
        name = f"model-{i}"
        started = time.perf_counter()
        row, _ = add_onnx(name, path, template=template, skip_check=True, force=True)
        took = time.perf_counter() - started
        check = row["model_check"]
        rows.append({"model": label, **{k: check[k] for k in (
            "faces", "people", "genuine", "impostor", "variation", "spread", "auc", "d_prime")},
            "search_faces_only": search_faces(name),
            "accepted": check["failed"] is None, "failed_check": check["failed_check"],
            "refused_because": check["failed"],
            "register_s": round(took, 1)})
        print(json.dumps(rows[-1]), flush=True)
    from facexplain.backbones.user_quality import MIN_AUC, MIN_SPREAD, MIN_VARIATION

    doc = stamp({"floors": {"variation": MIN_VARIATION, "spread": MIN_SPREAD, "auc": MIN_AUC},
                 "rows": rows, "machine": f"{machine()}, AMD EPYC, no GPU"})
    doc["command"] = " ".join([".venv/bin/python", "bench/model_checks.py", *sys.argv[1:]])
    shutil.rmtree(home, ignore_errors=True)
    print(table(doc))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


def table(doc: dict[str, Any]) -> str:
    lines = ["| model | faces (people) | same / different pairs | variation | spread | AUC | d' "
             "| AUC, d' on the 10 search faces | registration |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        t = r["search_faces_only"]
        verdict = "accepted" if r["accepted"] else f"refused ({r['failed_check']})"
        lines.append(f"| {r['model']} | {r['faces']} ({r['people']}) | {r['genuine']} / "
                     f"{r['impostor']} | {r['variation']:.3g} | {r['spread']:.4f} | "
                     f"{r['auc']:.3f} | {r['d_prime']:.2f} | {t['auc']:.3f}, "
                     f"{t['d_prime']:.2f} | {verdict} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
