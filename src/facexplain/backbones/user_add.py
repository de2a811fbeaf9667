"""Registering a user ONNX model: read it, run it in torch at its own input size, check it on
real faces (``user_checks``, ``user_quality``), then store a self-contained copy and its record
under the model home.

Why all or nothing: a registration that fails at any step (a check, the copy, the caller's
provisional calibration: ``discard``) leaves no record, no copied file and no temporary file,
so a broken backbone is never listed and the name stays free.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from facexplain import assets, settings
from facexplain.align.templates import TEMPLATES
from facexplain.backbones.normalisation import CONVENTIONS, Convention
from facexplain.backbones.user import Normalised, build_onnx_model
from facexplain.backbones.user_checks import (
    NORMALISATION_FACES,
    CheckResult,
    check_embeddings,
    check_faces,
    check_model,
    check_output,
    choose_normalisation,
    default_check_images,
    run_on_faces,
)
from facexplain.backbones.user_file import input_size, load_proto, self_contained
from facexplain.backbones.user_quality import measure, quality_images
from facexplain.backbones.user_records import (
    check_name,
    read_records,
    spec_from_record,
    three_values,
    user_dir,
)
from facexplain.errors import InputNotFound, InvalidArgument, UserModelError

Log = Callable[[str], None]
MIN_COSINE = 0.9999


def _draft(name: str, path: Path, proto: Any, template: str, size: int | None,
           points: Sequence[tuple[float, float]] | None, mean: Sequence[float],
           std: Sequence[float], bgr: bool, output: str | None,
           feature_nodes: Sequence[str], say: Log) -> dict[str, Any]:
    if points:
        if len(points) != 5:
            raise InvalidArgument("--points needs five x,y points")
        template = "custom"
    elif template not in TEMPLATES:
        raise InvalidArgument(f"unknown template '{template}'; valid: {', '.join(TEMPLATES)}, "
                              "or five custom --points")
    base = TEMPLATES[template].size if template in TEMPLATES else None
    size = input_size(proto, size, base, path.name)
    if base and size != base:
        say(f"input: {size}x{size} px, the {template} template scaled from {base} px")
    outputs = [o.name for o in proto.graph.output]
    out = output or outputs[0]
    return {"name": name, "file": f"{name}.onnx", "template": template, "size": size,
            "points": [list(p) for p in points or ()], "mean": list(mean), "std": list(std),
            "bgr": bool(bgr), "output": out, "feature_nodes": list(feature_nodes),
            "source": str(path)}


def _build(path: Path, row: dict[str, Any]) -> Normalised:
    from facexplain.backbones.onnx_graph import UnsupportedOnnxGraph
    from facexplain.backbones.tfjs_format import UnsupportedOp
    from facexplain.errors import UnknownNode

    try:
        model = build_onnx_model(path, row)
    except (UnsupportedOnnxGraph, UnsupportedOp) as err:
        raise UserModelError(f"{path.name}: the torch executor cannot run it: {err}") from None
    except UnknownNode as err:
        raise UserModelError(f"{path.name}: {err}") from None
    if not getattr(model.graph, "input_names", None):
        raise UserModelError(f"{path.name}: its output '{row['output']}' does not depend on its "
                             "input (no path from the image to it)")
    return model


def _given(mean: Sequence[float] | None, std: Sequence[float] | None, bgr: bool | None
           ) -> Convention | None:
    if mean is None and std is None and bgr is None:
        return None
    return Convention("the given normalisation",
                      tuple(three_values(mean or (0.0,))),  # type: ignore[arg-type]
                      tuple(three_values(std or (1.0,))), bool(bgr))  # type: ignore[arg-type]


def _judge(path: Path, emb: torch.Tensor, people: Sequence[str], row: dict[str, Any],
           force: bool, say: Log) -> None:
    """The model check (``user_quality``): refused in one line, or with ``force`` recorded as
    failed so that every verdict of the backbone warns."""
    quality = measure(emb, people)
    failed = quality.failure()
    row["model_check"] = {**quality.to_json(), "failed": failed,
                          "failed_check": quality.failed_check(), "forced": bool(failed)}
    if failed and not force:
        raise UserModelError(f"{path.name}: refused by the model check: {failed}; not "
                             "registered (--force registers it anyway, with a warning in "
                             "every verdict)")
    if failed:
        say(f"model check FAILED: {failed}; registered anyway (--force): every verdict warns")
        return
    say(f"model check: AUC {quality.auc:.3f}, d' {quality.d_prime:.2f}, spread "
        f"{quality.spread:.3f} on {quality.faces} LFW faces of {quality.people} people")


def add_onnx(name: str, onnx_file: Path, template: str = "arcface-112", size: int | None = None,
             points: Sequence[tuple[float, float]] | None = None,
             mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             bgr: bool | None = None, output: str | None = None,
             feature_nodes: Sequence[str] = (), description: str = "",
             check_images: Sequence[Path] | None = None, skip_check: bool = False,
             force: bool = False, command: str = "", log: Log | None = None
             ) -> tuple[dict[str, Any], CheckResult | None]:
    """Register ``onnx_file`` as backbone ``name``; returns the stored record and the check.

    ``mean``/``std``/``bgr`` left as None: the normalisation is found on real faces
    (``choose_normalisation``); given: it is checked against the best one found. ``force``
    registers a model that fails the model check (``user_quality``), marked as such."""
    say = log or (lambda _m: None)
    check_name(name)
    if name in read_records():
        raise InvalidArgument(f"user backbone '{name}' exists; `facexplain backbones remove "
                              f"{name}` first")
    proto, external = load_proto(onnx_file)
    row = _draft(name, onnx_file, proto, template, size, points, mean or (0.0,), std or (1.0,),
                 bool(bgr), output, feature_nodes, say)
    if external:
        row["external_data"] = external
    outputs = [o.name for o in proto.graph.output]
    if output is None and len(outputs) > 1:
        say(f"several outputs {outputs}; using '{row['output']}' as the embedding (--output)")
    with tempfile.TemporaryDirectory(prefix="facexplain-register-") as folder:
        model_file = self_contained(proto, onnx_file, row, Path(folder), bool(external), say)
        del proto  # the weights live in the file now
        result, dim = _check(model_file, row, _given(mean, std, bgr), check_images, skip_check,
                             force, say)
        row["embedding_dim"] = dim
        _store(model_file, row, description or f"user ONNX model {onnx_file.name}", result,
               command)
    return row, result


def _check(path: Path, row: dict[str, Any], given: Convention | None,
           check_images: Sequence[Path] | None, skip_check: bool, force: bool, say: Log
           ) -> tuple[CheckResult | None, int]:
    """Every check, in the order that fails fastest; returns the runtime check and the
    embedding's length."""
    alignment = spec_from_record({**row, "embedding_dim": 1}).alignment
    plain = _build(path, {**row, "mean": [0.0], "std": [1.0], "bgr": False})
    s = settings.current()
    try:
        first = default_check_images(NORMALISATION_FACES)
        paths, people = quality_images(s.lfw_pairs, s.lfw_images, first)
    except InputNotFound:  # no LFW photos to tell people apart
        first, paths, people = [], [], []
    faces = check_faces(alignment, paths) if paths else None
    if faces is not None:
        n = len(first)
        check_output(path.name, run_on_faces(path.name, plain, faces[:n]), n)
        chosen = choose_normalisation(path.name, plain, faces[:n], people[:n], given, row, say)
    else:
        chosen = given or CONVENTIONS[0]
        say(f"normalisation: {chosen.name} (not checked: no LFW photos here)")
    row.update(mean=list(chosen.mean), std=list(chosen.std), bgr=chosen.bgr)
    say(f"building {path.name} in torch ...")
    model = _build(path, row)
    dim = 0
    if faces is not None:
        emb = check_embeddings(path.name, model, faces)
        dim = int(emb.shape[1])
        _judge(path, emb, people, row, force, say)
    else:
        row["model_check"] = None
        say("model check: not done (no LFW photos here); every verdict warns")
    try:
        images = list(check_images) if check_images else default_check_images()
    except InputNotFound:
        if not skip_check:
            raise
        images = []  # unchecked on request, and no photos to check the output on either
    check = None
    if images:
        known = {p: i for i, p in enumerate(paths)}
        if faces is not None and all(p in known for p in images):
            ref = faces[[known[p] for p in images]]
        else:
            ref = check_faces(alignment, images)
        dim = int(check_embeddings(path.name, model, ref).shape[1])
        if not skip_check:
            say(f"checking against a reference runtime on {len(images)} real faces ...")
            check = check_model(path, model, ref)
            if not check.min_cosine >= MIN_COSINE:  # NaN is not a match either
                raise UserModelError(
                    f"{path.name}: torch execution differs from {check.runtime} (min cosine "
                    f"{check.min_cosine:.6f}, max abs diff {check.max_abs_diff:.3g}); not "
                    "registered")
    if not dim:
        size = model.input_size
        probe = torch.full((1, 3, size, size), 127.5)
        dim = int(check_output(path.name, run_on_faces(path.name, model, probe), 1).shape[1])
    return check, dim


def _store(model_file: Path, row: dict[str, Any], description: str,
           result: CheckResult | None, command: str) -> None:
    """The copy and its record, both or neither."""
    directory = user_dir()
    target = directory / row["file"]
    record = directory / f"{row['name']}.json"
    parts = [target.with_suffix(".onnx.part"), record.with_suffix(".json.part")]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_file, parts[0])
        row["sha256"] = assets.sha256_of(parts[0])
        row.update(description=description,
                   check=None if result is None else result.__dict__,
                   date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                   command=command)
        parts[1].write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
        parts[0].replace(target)
        parts[1].replace(record)
    except BaseException as err:
        for path in (*parts, target, record):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if isinstance(err, OSError):  # a full disk, a read-only model home
            raise UserModelError(f"cannot store '{row['name']}' under {directory}: "
                                 f"{err.strerror or err}; not registered") from None
        raise


def discard(name: str) -> None:
    """Undo a registration whose last step failed (e.g. its provisional calibration)."""
    from facexplain.backbones.user_records import remove_backbone

    if name in read_records():
        remove_backbone(name)
