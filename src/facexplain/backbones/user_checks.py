"""The checks a user's ONNX model passes before it is registered, each a one-line refusal: its
output is one embedding per face, its normalisation separates people, the torch execution
matches a reference runtime, and it tells people apart (``user_quality``).

Why check: the torch executor is what every explanation runs on, so a registered model must
compute what its own runtime computes. onnxruntime is the reference; files it refuses (e.g.
block-quantised int8, as the original SFace) are checked against OpenCV's dnn instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facexplain import assets, settings
from facexplain.backbones.normalisation import Convention
from facexplain.backbones.user import Normalised
from facexplain.errors import InputNotFound, UserModelError

Log = Callable[[str], None]
N_FACES = 6
MIN_COSINE = 0.9999
MIN_DIM, MAX_DIM = 16, 8192  # a face embedding's plausible length
NORMALISATION_FACES = 12  # both photos of LFW's first six same-person pairs: 10 photos, 4 people
WORSE_BY = 1.0  # a given normalisation this much below the best d' is refused as wrong
FACE_KEY = "check-face-v1"  # cache key of a check photo's chosen face (policy 'largest')


@dataclass(frozen=True)
class CheckResult:
    """How the torch execution compares with the reference runtime on real aligned faces."""

    runtime: str
    faces: int
    max_abs_diff: float
    min_cosine: float


def check_faces(size_template: Any, images: Sequence[Path]) -> torch.Tensor:
    """Real faces aligned to the model's template: MTCNN + the five-point warp. Each photo's
    landmarks are cached in the model home (any template warps them), so a second
    registration does not detect the same LFW faces again."""
    from facexplain.align import MTCNN, align_image, warp_face
    from facexplain.cache import DiskCache, image_key
    from facexplain.io import load_image

    cache = DiskCache(settings.current().cache)
    detector = None
    faces = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MTCNN's small convs only lose time to thread hand-offs
    try:
        for path in images:
            image = load_image(path)
            key = f"{FACE_KEY}:{image_key(path)}"
            hit = cache.get(key)
            if hit is None:
                detector = detector or MTCNN(root=assets.home())
                found = align_image(image, detector, size_template, policy="largest",
                                    source=str(path))
                assert found.detection is not None
                landmarks = np.asarray(found.detection.landmarks, dtype=np.float64)
                cache.put(key, landmarks=landmarks)
            else:
                landmarks = hit["landmarks"]
            faces.append(warp_face(image, landmarks, size_template))
    finally:
        torch.set_num_threads(threads)
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


def run_on_faces(name: str, model: Normalised, faces: torch.Tensor) -> torch.Tensor:
    """The model's output on ``faces``; a failure of the executor is one line."""
    try:
        with torch.no_grad():
            return model(faces)
    except (RuntimeError, ValueError, IndexError) as err:
        raise UserModelError(f"{name}: running it on {len(faces)} faces of "
                             f"{model.input_size}x{model.input_size} px fails "
                             f"({str(err).splitlines()[0][:160]})") from None


def check_output(name: str, out: torch.Tensor, n: int) -> torch.Tensor:
    """One vector of plausible length per face, as an (n, D) tensor (one-line errors)."""
    shape = tuple(out.shape)
    vector = out.ndim == 2 or (out.ndim == 4 and out.shape[2:] == (1, 1))
    if not vector or out.shape[0] != n:
        raise UserModelError(f"{name}: its output is {shape} for {n} faces, not one vector per "
                             "face; name the embedding node with --output")
    emb = out.reshape(n, -1)
    if not MIN_DIM <= emb.shape[1] <= MAX_DIM:
        raise UserModelError(f"{name}: its output has {emb.shape[1]} values per face, not a "
                             f"face embedding ({MIN_DIM}-{MAX_DIM}); name it with --output")
    return emb


def check_embeddings(name: str, model: Normalised, faces: torch.Tensor) -> torch.Tensor:
    """The output is one finite vector of plausible length per face: a wrong model, node or
    normalisation fails here with one line. Returns the (n, D) embeddings."""
    emb = check_output(name, run_on_faces(name, model, faces), len(faces))
    if not torch.isfinite(emb).all():
        raise UserModelError(f"{name}: its output has NaN or infinite values on real faces; "
                             "check --mean/--std (a zero std divides by zero)")
    return emb


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


def choose_normalisation(name: str, plain: Normalised, faces: torch.Tensor,
                         people: Sequence[str], given: Convention | None, row: dict[str, Any],
                         say: Log) -> Convention:
    """The convention that separates people best on real faces (when none was given), or the
    given one if it is not clearly worse than the best (else a one-line error naming it).
    ``plain`` is the model built with the identity normalisation."""
    from facexplain.backbones.normalisation import pick, rank_conventions

    ranked = rank_conventions(plain, faces, people, given)
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
        raise UserModelError(f"{name}: the given normalisation gives NaN or infinite "
                             "outputs on real faces (a zero --std divides by zero)")
    if not mine >= best_d - WORSE_BY:
        raise UserModelError(
            f"{name}: the given normalisation separates people far worse (d' {mine:.2f}) "
            f"than {best.name} (d' {best_d:.2f}) on real LFW faces; use "
            f"--mean {_csv(best.mean)} --std {_csv(best.std)}{' --bgr' if best.bgr else ''} "
            "(the built-ins' runtime files normalise inside: no flags)")
    return given


def _csv(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values) if len(set(values)) > 1 else f"{values[0]:g}"
