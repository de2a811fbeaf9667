"""Creating a study folder: the pair images, precomputed help maps, participants and tokens.

Why precompute: a participant must never wait for an explanation, and every participant of a
condition must see the same picture for the same pair. The folder is self-contained (images
copied in, maps drawn, one SQLite file), so it can be moved to the machine that serves it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from facexplain import settings
from facexplain.benchmarks.lookalike import read_pairs_file
from facexplain.errors import InputNotFound, InvalidArgument
from facexplain.io import load_image
from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo
from facexplain.methods.registry import method_names
from facexplain.pipeline import FacePipeline
from facexplain.study.store import DB_NAME, SCALES, Participant, StudyStore, token_hash

NONE = "none"  # the control condition: the second round shows the pair again, without help
# Which map a participant sees, first present wins: the paper's Θ-normalised difference map
# for pairwise occlusion, the classic unsigned picture for gradient methods (its Figs. 5-6).
DISPLAY_PREFERENCE = ("difference_normalized", "magnitude", "contribution", "difference")


@dataclass(frozen=True)
class CreatedStudy:
    folder: Path
    admin_token: str
    participants: tuple[Participant, ...]


def display_map(info: MethodInfo, returned: Sequence[str]) -> MapSpec:
    """The map a participant sees among those the method returned for this pair (the
    Θ-normalised map exists only for the patch/stride Θ was measured at)."""
    for name in (*DISPLAY_PREFERENCE, *returned):
        if name in returned:
            return info.map_spec(name) or MapSpec(name, name)
    raise InvalidArgument(f"method {info.name} returned no map to show")


def parse_conditions(text: str) -> tuple[str, ...]:
    """'none,occlusion,saliency' -> validated condition names (``none`` or a method)."""
    conds = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    valid = (NONE, *method_names())
    if not conds:
        raise InvalidArgument(f"no condition given; valid: {', '.join(valid)}")
    for c in conds:
        if c not in valid:
            raise InvalidArgument(f"unknown condition '{c}'; valid: {', '.join(valid)}")
    return conds


def make_participants(conditions: Sequence[str], per_condition: int, n_pairs: int,
                      seed: int) -> list[Participant]:
    """``per_condition`` participants per condition, each with their own random pair order
    for each round (a seeded generator: the same study file gives the same orders)."""
    rng = random.Random(seed)
    out = []
    for cond in conditions:
        for k in range(per_condition):
            order1, order2 = list(range(n_pairs)), list(range(n_pairs))
            rng.shuffle(order1)
            rng.shuffle(order2)
            out.append(Participant(f"{cond}-{k + 1:02d}", secrets.token_urlsafe(16), cond,
                                   tuple(order1), tuple(order2)))
    return out


def crop_to_labelled_face(pipe: FacePipeline, src: Path, dest: Path,
                          margin: float = 0.6) -> None:
    """Save the LFW-convention face of ``src`` (the one nearest the centre) with a margin, so
    the participant, the model and the help picture all see the same face even when the
    photo holds several people (15% of LFW does)."""
    image = load_image(src)
    located = pipe.locate(image, policy="center", allow_fallback=True, source=str(src))
    x1, y1, x2, y2 = (float(v) for v in located.detection.box)
    w, h = x2 - x1, y2 - y1
    height, width = image.shape[:2]
    box = (max(0, int(x1 - margin * w)), max(0, int(y1 - margin * h)),
           min(width, int(x2 + margin * w)), min(height, int(y2 + margin * h)))
    Image.fromarray(image).crop(box).save(dest, quality=95)


def draw_help(spec: MapSpec, values: torch.Tensor, faces: torch.Tensor, dest: Path) -> Path:
    """The help picture: the map over both aligned faces, scaled as the report scales it but
    without a title, so no condition names its method to the participant."""
    from facexplain.report.overlay import save_pair_overlay

    lo, hi = spec.vrange if spec.vrange is not None else (None, None)
    if spec.signed and spec.vrange is None:
        bound = float(values.abs().max()) or 1e-12
        lo, hi = -bound, bound
    return save_pair_overlay(faces, values, dest, "", vmin=lo, vmax=hi, cmap=spec.cmap)


def draw_help_maps(folder: Path, pairs: Sequence[tuple[Path, Path]], methods: Sequence[str],
                   pipe: FacePipeline, options: ExplainOptions,
                   log: Callable[[str], None] | None = None) -> list[tuple[float, bool]]:
    """Explain every pair once with all help methods; save each method's display map as
    ``maps/<method>/p<idx>.png``. Returns the explained model's (similarity, same) per pair."""
    from facexplain.api import explain_pair, verify

    verdicts = []
    for idx, (a, b) in enumerate(pairs):
        if log is not None:
            log(f"pair {idx + 1}/{len(pairs)}")
        if methods:
            result = explain_pair(a, b, list(methods), pipe.spec.name, options, pipeline=pipe)
            for r in result.results:
                spec = display_map(r.method, list(r.explanation.maps))
                dest = folder / "maps" / r.method.name / f"p{idx:04d}.png"
                dest.parent.mkdir(parents=True, exist_ok=True)
                draw_help(spec, r.explanation.maps[spec.name], result.faces, dest)
            v = result.verdict
        else:
            v = verify(a, b, pipe.spec.name, pipeline=pipe)
        verdicts.append((v.similarity, v.same))
    return verdicts


def create_study(pairs_file: Path, out: Path, conditions: Sequence[str], per_condition: int,
                 backbone: str = "sface", scale: int = 5, seed: int = 0,
                 options: ExplainOptions | None = None, images: Path | None = None,
                 name: str = "", log: Callable[[str], None] | None = None,
                 draw_maps: bool = True) -> CreatedStudy:
    """Make the study folder ``out`` from a pair set; returns the admin token (shown once).

    ``draw_maps=False`` (a simulation or a dry run) loads no model: no help pictures, photos
    copied uncropped, and the model's verdicts come from the pair set."""
    from facexplain.backbones.registry import get_spec

    get_spec(backbone)
    if scale not in SCALES:
        raise InvalidArgument(f"--scale must be one of {', '.join(map(str, SCALES))}")
    if not 1 <= per_condition <= 1000:
        raise InvalidArgument(f"participants per condition must be 1..1000, got {per_condition}")
    if (out / DB_NAME).exists():
        raise InvalidArgument(f"{out} already holds a study; choose another --out")
    pairs, meta = read_pairs_file(pairs_file)
    if not pairs:
        raise InvalidArgument(f"{pairs_file} has no pairs")
    root = images or settings.current().lfw_images
    sources = [(root / p.a, root / p.b) for p in pairs]
    missing = [s for ab in sources for s in ab if not s.is_file()]
    if missing:
        raise InputNotFound(f"image of the pair set not found: {missing[0]}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    pipe = FacePipeline(backbone) if draw_maps else None
    copied = []
    for idx, (a, b) in enumerate(sources):
        dest = (out / "images" / f"p{idx:04d}_a.jpg", out / "images" / f"p{idx:04d}_b.jpg")
        for src, dst in zip((a, b), dest, strict=True):
            if pipe is not None:
                crop_to_labelled_face(pipe, src, dst)
            else:
                shutil.copyfile(src, dst)
        copied.append(dest)
    methods = [c for c in conditions if c != "none"]
    if pipe is not None:
        verdicts = draw_help_maps(out, copied, methods, pipe, options or ExplainOptions(), log)
    else:
        if meta.get("model") not in (None, backbone):
            raise InvalidArgument(f"the pair set was scored with {meta.get('model')}, not "
                                  f"{backbone}; draw the maps or pass --backbone "
                                  f"{meta.get('model')}")
        verdicts = [(p.model_score, p.model_same) for p in pairs]
    admin = secrets.token_urlsafe(24)
    people = make_participants(conditions, per_condition, len(pairs), seed)
    store = StudyStore(out / DB_NAME)
    try:
        store.init({
            "name": name or pairs_file.stem, "scale": str(scale), "backbone": backbone,
            "conditions": json.dumps(list(conditions)), "per_condition": str(per_condition),
            "admin_token_sha256": token_hash(admin), "seed": str(seed),
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pairs_source": str(pairs_file), "pairs_meta": json.dumps(meta),
            "maps": "drawn" if draw_maps else "none"})
        with store.transaction():
            store.db.executemany(
                "INSERT INTO pairs VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                [(i, str(ab[0].relative_to(out)), str(ab[1].relative_to(out)), int(p.same),
                  v[0], int(v[1]), p.mining_score, f"{p.a} | {p.b}")
                 for i, (p, ab, v) in enumerate(zip(pairs, copied, verdicts, strict=True))])
        for person in people:
            store.add_participant(person)
    finally:
        store.close()
    return CreatedStudy(out, admin, tuple(people))

