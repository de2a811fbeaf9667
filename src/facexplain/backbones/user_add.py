"""Registering a user ONNX model: read it, run it in torch, check it against a reference
runtime on real faces, then store a copy and its record under the model home.

Why check: the torch executor is what every explanation runs on, so a registered model must
compute what its own runtime computes. onnxruntime is the reference; files it refuses (e.g.
block-quantised int8, as the original SFace) are checked against OpenCV's dnn instead.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facexplain import assets, settings
from facexplain.align.templates import TEMPLATES
from facexplain.backbones.normalisation import CONVENTIONS, Convention
from facexplain.backbones.user import Normalised, build_onnx_model
from facexplain.backbones.user_records import (
    check_name,
    read_records,
    spec_from_record,
    three_values,
    user_dir,
)
from facexplain.errors import InputNotFound, InvalidArgument, UserModelError

Log = Callable[[str], None]
N_FACES = 6
MIN_COSINE = 0.9999


@dataclass(frozen=True)
class CheckResult:
    """How the torch execution compares with the reference runtime on real aligned faces."""

    runtime: str
    faces: int
    max_abs_diff: float
    min_cosine: float


def _load_proto(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise InputNotFound(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - any decode failure is the same user error
        raise UserModelError(f"{path} is not a readable ONNX model ({type(err).__name__})"
                             ) from None
    if not proto.graph.node:
        raise UserModelError(f"{path} is not a readable ONNX model (no graph nodes)")
    return proto


def _draft(name: str, path: Path, proto: Any, template: str, size: int | None,
           points: Sequence[tuple[float, float]] | None, mean: Sequence[float],
           std: Sequence[float], bgr: bool, output: str | None,
           feature_nodes: Sequence[str]) -> dict[str, Any]:
    if points:
        if len(points) != 5 or not size:
            raise InvalidArgument("--points needs five x,y points and --input-size")
        template = "custom"
    elif template not in TEMPLATES:
        raise InvalidArgument(f"unknown template '{template}'; valid: {', '.join(TEMPLATES)}, "
                              "or five custom --points")
    size = size or TEMPLATES[template].size
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
        return build_onnx_model(path, row)
    except (UnsupportedOnnxGraph, UnsupportedOp) as err:
        raise UserModelError(f"{path.name}: the torch executor cannot run it: {err}") from None
    except UnknownNode as err:
        raise UserModelError(f"{path.name}: {err}") from None


def check_faces(size_template: Any, images: Sequence[Path]) -> torch.Tensor:
    """Real faces aligned to the model's template: MTCNN + the five-point warp."""
    from facexplain.align import MTCNN, align_image
    from facexplain.io import load_image

    detector = MTCNN(root=assets.home())
    faces = [align_image(load_image(p), detector, size_template, policy="largest",
                         source=str(p)).pixels for p in images]
    return torch.stack(faces)


def default_check_images(n: int = N_FACES) -> list[Path]:
    """Photos of LFW's pairs.txt (real faces, found offline): two of each of n/2 people, so
    both same-person and different-person comparisons are possible."""
    from facexplain.datasets.lfw import read_pairs

    s = settings.current()
    if not s.lfw_pairs.is_file():
        raise InputNotFound(f"no LFW pairs at {s.lfw_pairs} to check the model on; "
                            "pass --check-images DIR")
    pairs = [p for p in read_pairs(s.lfw_pairs) if p.same]
    root = s.lfw_images
    paths = [p for pair in pairs[:n // 2] for p in (pair.path_a(root), pair.path_b(root))]
    return list(dict.fromkeys(paths))[:n]


def _reference(path: Path, feeds: np.ndarray, input_name: str, output: str
               ) -> tuple[str, np.ndarray]:
    """The reference runtime's output for each face (one at a time: fixed-batch files work)."""
    errors = []
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs = [sess.run([output], {input_name: feeds[i:i + 1]})[0] for i in range(len(feeds))]
        return f"onnxruntime {ort.__version__}", np.concatenate(outs).reshape(len(feeds), -1)
    except Exception as err:  # noqa: BLE001 - fall back to the second runtime
        errors.append(f"onnxruntime: {str(err).splitlines()[0][:120]}")
    try:
        import cv2

        net = cv2.dnn.readNet(str(path))
        outs = []
        for i in range(len(feeds)):
            net.setInput(feeds[i:i + 1], input_name)
            outs.append(net.forward(output).copy())
        return f"opencv-dnn {cv2.__version__}", np.concatenate(outs).reshape(len(feeds), -1)
    except Exception as err:  # noqa: BLE001 - reported below
        errors.append(f"opencv: {str(err).splitlines()[0][:120]}")
    raise UserModelError(f"{path.name}: no reference runtime could run it to check the torch "
                         f"execution ({'; '.join(errors)}); pass --skip-check to register "
                         "it unchecked")


def check_model(path: Path, model: Normalised, faces: torch.Tensor) -> CheckResult:
    """Torch embeddings vs the reference runtime's on the same preprocessed faces."""
    with torch.no_grad():
        ours = model(faces).reshape(len(faces), -1)
        feeds = model.preprocess(faces).contiguous().numpy().astype(np.float32)
    from facexplain.backbones.onnx_graph import OnnxGraph

    graph = model.graph
    assert isinstance(graph, OnnxGraph)
    runtime, ref = _reference(path, feeds, graph.input_names[0], model.embedding_node)
    ref_t = torch.from_numpy(ref.astype(np.float32))
    if ref_t.shape != ours.shape:
        raise UserModelError(f"{path.name}: torch gives {tuple(ours.shape)}, {runtime} "
                             f"{tuple(ref_t.shape)}")
    cos = torch.nn.functional.cosine_similarity(ours, ref_t, dim=1)
    return CheckResult(runtime, len(faces), float((ours - ref_t).abs().max()), float(cos.min()))


MIN_DIM, MAX_DIM = 16, 8192  # a face embedding's plausible length
MAX_IMPOSTOR_COSINE = 0.9  # different people this alike: the input is not what the model expects


def check_embeddings(path: Path, model: Normalised, faces: torch.Tensor,
                     people: Sequence[str]) -> None:
    """The output is one finite vector of plausible length per face, and different people's
    vectors differ: a wrong model, node or normalisation fails here with one line."""
    with torch.no_grad():
        out = model(faces)
    shape = tuple(out.shape)
    vector = out.ndim == 2 or (out.ndim == 4 and out.shape[2:] == (1, 1))
    if not vector or out.shape[0] != len(faces):
        raise UserModelError(f"{path.name}: its output is {shape} for {len(faces)} faces, not one "
                             "vector per face; name the embedding node with --output")
    emb = out.reshape(len(faces), -1)
    if not MIN_DIM <= emb.shape[1] <= MAX_DIM:
        raise UserModelError(f"{path.name}: its output has {emb.shape[1]} values per face, not a "
                             f"face embedding ({MIN_DIM}-{MAX_DIM}); name it with --output")
    if not torch.isfinite(emb).all():
        raise UserModelError(f"{path.name}: its output has NaN or infinite values on real faces; "
                             "check --mean/--std (a zero std divides by zero)")


NORMALISATION_FACES = 12  # two photos each of six LFW people
WORSE_BY = 1.0  # a given normalisation this much below the best d' is refused as wrong


def choose_normalisation(path: Path, row: dict[str, Any], alignment: Any,
                         given: Convention | None, say: Log) -> Convention:
    """The convention that separates people best on real faces (when none was given), or the
    given one if it is not clearly worse than the best (else a one-line error naming it)."""
    from facexplain.backbones.normalisation import pick, rank_conventions

    images = default_check_images(NORMALISATION_FACES)
    people = [q.parent.name for q in images]
    plain = _build(path, {**row, "mean": [0.0], "std": [1.0], "bgr": False})
    ranked = rank_conventions(plain, check_faces(alignment, images), people, given)
    best, best_d = ranked[0]
    row["normalisation_check"] = {c.name: round(d, 3) for c, d in ranked}
    if given is None:
        chosen, chosen_d = pick(ranked)
        other = next((c, d) for c, d in ranked if (c.mean, c.std) != (chosen.mean, chosen.std))
        say(f"normalisation: {chosen.name} separates people best (d' {chosen_d:.2f}; the best "
            f"other scale, {other[0].name}, d' {other[1]:.2f}); --mean/--std/--bgr override it")
        return chosen
    mine = dict(ranked)[given]
    if not np.isfinite(mine):
        raise UserModelError(f"{path.name}: the given normalisation gives NaN or infinite "
                             "outputs on real faces (a zero --std divides by zero)")
    if not mine >= best_d - WORSE_BY:
        raise UserModelError(
            f"{path.name}: the given normalisation separates people far worse (d' {mine:.2f}) "
            f"than {best.name} (d' {best_d:.2f}) on real LFW faces; use "
            f"--mean {_csv(best.mean)} --std {_csv(best.std)}{' --bgr' if best.bgr else ''} "
            "(the built-ins' runtime files normalise inside: no flags)")
    return given


def _csv(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values) if len(set(values)) > 1 else f"{values[0]:g}"


def _with_dynamic_batch(proto: Any, onnx_file: Path, row: dict[str, Any], say: Log) -> Path:
    """The file itself, or a copy whose fixed batch was made free (checked on onnxruntime)."""
    import tempfile

    import onnx

    from facexplain.backbones.onnx_batch import dynamic_batch

    new, batch = dynamic_batch(proto, onnx_file, row["output"], int(row["size"]))
    if batch is None:
        return onnx_file
    folder = Path(tempfile.mkdtemp(prefix="facexplain-batch-"))
    rewritten = folder / onnx_file.name
    onnx.save(new, str(rewritten))
    row["fixed_batch"] = batch
    say(f"{onnx_file.name} takes a fixed batch of {batch}: made it take any batch (same outputs "
        "on onnxruntime); the registered copy is the rewritten graph")
    return rewritten


def add_onnx(name: str, onnx_file: Path, template: str = "arcface-112", size: int | None = None,
             points: Sequence[tuple[float, float]] | None = None,
             mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             bgr: bool | None = None, output: str | None = None,
             feature_nodes: Sequence[str] = (), description: str = "",
             check_images: Sequence[Path] | None = None, skip_check: bool = False,
             command: str = "", log: Log | None = None
             ) -> tuple[dict[str, Any], CheckResult | None]:
    """Register ``onnx_file`` as backbone ``name``; returns the stored record and the check.

    ``mean``/``std``/``bgr`` left as None: the normalisation is found on real faces
    (``choose_normalisation``); given: it is checked against the best one found."""
    say = log or (lambda _m: None)
    check_name(name)
    if name in read_records():
        raise InvalidArgument(f"user backbone '{name}' exists; `facexplain backbones remove "
                              f"{name}` first")
    proto = _load_proto(onnx_file)
    row = _draft(name, onnx_file, proto, template, size, points, mean or (0.0,), std or (1.0,),
                 bool(bgr), output, feature_nodes)
    onnx_file = _with_dynamic_batch(proto, onnx_file, row, say)
    outputs = [o.name for o in proto.graph.output]
    if output is None and len(outputs) > 1:
        say(f"several outputs {outputs}; using '{row['output']}' as the embedding (--output)")
    spec = spec_from_record({**row, "embedding_dim": 1})
    given = None if mean is None and std is None and bgr is None else Convention(
        "the given normalisation", tuple(three_values(mean or (0.0,))),  # type: ignore[arg-type]
        tuple(three_values(std or (1.0,))), bool(bgr))  # type: ignore[arg-type]
    try:
        chosen = choose_normalisation(onnx_file, row, spec.alignment, given, say)
    except InputNotFound:  # no LFW photos to tell people apart: as given, or none
        chosen = given or CONVENTIONS[0]
        say(f"normalisation: {chosen.name} (not checked: no LFW photos here)")
    row.update(mean=list(chosen.mean), std=list(chosen.std), bgr=chosen.bgr)
    say(f"building {onnx_file.name} in torch ...")
    model = _build(onnx_file, row)
    result = None
    try:
        images = list(check_images) if check_images else default_check_images()
    except InputNotFound:
        if not skip_check:
            raise
        images = []  # unchecked on request, and no photos to check the output on either
    faces = check_faces(spec.alignment, images) if images else None
    if faces is not None:
        check_embeddings(onnx_file, model, faces, [p.parent.name or p.stem for p in images])
    if not skip_check and faces is not None:
        say(f"checking against a reference runtime on {len(images)} real faces ...")
        result = check_model(onnx_file, model, faces)
        if not result.min_cosine >= MIN_COSINE:  # NaN is not a match either
            raise UserModelError(
                f"{onnx_file.name}: torch execution differs from {result.runtime} (min cosine "
                f"{result.min_cosine:.6f}, max abs diff {result.max_abs_diff:.3g}); not registered")
    with torch.no_grad():
        probe = torch.full((1, 3, spec.input_size, spec.input_size), 127.5)
        row["embedding_dim"] = int(model(probe).reshape(1, -1).shape[1])
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / row["file"]
    tmp = target.with_suffix(".onnx.part")
    shutil.copyfile(onnx_file, tmp)
    row["sha256"] = assets.sha256_of(tmp)
    tmp.replace(target)
    row.update(description=description or f"user ONNX model {onnx_file.name}",
               check=None if result is None else result.__dict__,
               date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), command=command)
    record = directory / f"{name}.json"
    record.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    return row, result
