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
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from facexplain import settings
from facexplain.benchmarks.lookalike import StudyPair, read_pairs_file
from facexplain.errors import InputNotFound, InvalidArgument
from facexplain.io import load_image
from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo
from facexplain.methods.registry import get_method, method_names
from facexplain.pipeline import FacePipeline
from facexplain.study.catch import (
    CatchPair,
    Embed,
    choose_catch_pairs,
    default_min_correct,
    mix_in,
)
from facexplain.study.store import DB_NAME, REAL, SCALES, Participant, StudyStore, token_hash
from facexplain.types import ComponentFinding

NONE = "none"  # the control condition: the second round shows the pair again, without help
# Which map a participant sees, first present wins: the paper's Θ-normalised difference map
# for pairwise occlusion, the classic unsigned picture for gradient methods (its Figs. 5-6).
DISPLAY_PREFERENCE = ("difference_normalized", "magnitude", "contribution", "difference")
# Two pictures that differ by less than half a colormap step (of 256) look the same.
SAME_PICTURE_TOL = 1 / 512
# Conditions whose help is the component table (``maps/<condition>/p<idx>.json``), not a
# picture: any method whose results carry component findings is shown so; these names also
# when no maps are drawn (a simulation), since then no result says so.
TABLE_CONDITIONS = ("components",)
TABLE_READING = ("each row is a part of the face, the most different first; \"differs\" means "
                 "the part differs more than it does between two photos of one person, "
                 "\"consistent\" that it does not")


@dataclass(frozen=True)
class CreatedStudy:
    folder: Path
    admin_token: str
    participants: tuple[Participant, ...]
    real_pairs: int = 0
    catch_pairs: int = 0


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


def help_reading(spec: MapSpec) -> str:
    """What the round-2 page tells a participant about the picture: the map's own reading
    (its meaning differs per method: where faces differ, where the score is sensitive...)."""
    return spec.reading or f"warm colours mark where this value is high: {spec.caption}"


def same_picture(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether two maps draw the same picture (each scaled by its own largest magnitude, as
    ``draw_help`` scales an unsigned map)."""
    if x.shape != y.shape:
        return False
    x, y = x.detach().double(), y.detach().double()
    sx, sy = float(x.abs().max()) or 1.0, float(y.abs().max()) or 1.0
    return float((x / sx - y / sy).abs().max()) < SAME_PICTURE_TOL


def identical_conditions(maps: dict[str, torch.Tensor]) -> list[tuple[str, ...]]:
    """Groups of conditions (two or more) whose help pictures for the same pair are the same
    picture, in the order given."""
    groups: list[list[str]] = []
    for name in maps:
        home = next((g for g in groups if same_picture(maps[g[0]], maps[name])), None)
        if home is None:
            groups.append([name])
        else:
            home.append(name)
    return [tuple(g) for g in groups if len(g) > 1]


def identical_warning(groups: list[tuple[str, ...]], backbone: str) -> str:
    """One line for the operator: two groups would see the same help, so they test one thing."""
    names = "; ".join(", ".join(g[:-1]) + f" and {g[-1]}" for g in groups)
    hint = ("" if backbone == "dlib-resnet" else
            "; --backbone dlib-resnet (whose ReLUs make deconv and guided differ) avoids it")
    return (f"warning: on {backbone}, {names} draw the same picture (first pair compared): "
            f"their participants would see identical help{hint}")


def save_help_table(findings: Sequence[ComponentFinding], dest: Path) -> Path:
    """The component table a participant sees, as JSON rows (drawn by the page)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps([f.to_dict() for f in findings]), encoding="utf-8")
    return dest


def draw_help_maps(folder: Path, pairs: Sequence[tuple[Path, Path]], methods: Sequence[str],
                   pipe: FacePipeline, options: ExplainOptions,
                   log: Callable[[str], None] | None = None, progress: bool = False,
                   ) -> tuple[list[tuple[float, bool]], dict[str, MapSpec | None]]:
    """Explain every pair once with all help methods; save each method's display map as
    ``maps/<method>/p<idx>.png`` (a component comparison: its table as ``p<idx>.json``).
    Returns the explained model's (similarity, same) per pair and the map shown per method
    (None: the table). After the first pair, warns (``log``) when two methods draw the same
    picture: before hours of map drawing, not after."""
    from facexplain.api import explain_pair, verify
    from facexplain.report.components import findings_in

    verdicts = []
    shown: dict[str, MapSpec | None] = {}
    bar = tqdm(pairs, desc="help maps", unit="pair", disable=not progress, file=sys.stderr)
    for idx, (a, b) in enumerate(bar):
        if methods:
            result = explain_pair(a, b, list(methods), pipe.spec.name, options, pipeline=pipe)
            first: dict[str, torch.Tensor] = {}
            for r in result.results:
                findings = findings_in(r.explanation.meta)
                if findings is not None:
                    if idx == 0 and log is not None and all(f.theta is None for f in findings):
                        log(f"warning: no Θ_c is stored for {pipe.spec.name}: the "
                            f"{r.method.name} table ranks the components but judges none")
                    shown.setdefault(r.method.name, None)
                    save_help_table(findings, folder / "maps" / r.method.name / f"p{idx:04d}.json")
                    continue
                spec = display_map(r.method, list(r.explanation.maps))
                shown.setdefault(r.method.name, spec)
                dest = folder / "maps" / r.method.name / f"p{idx:04d}.png"
                dest.parent.mkdir(parents=True, exist_ok=True)
                draw_help(spec, r.explanation.maps[spec.name], result.faces, dest)
                first[r.method.name] = r.explanation.maps[spec.name]
            same = identical_conditions(first) if idx == 0 else []
            if same and log is not None:
                log(identical_warning(same, pipe.spec.name))
            v = result.verdict
        else:
            v = verify(a, b, pipe.spec.name, pipeline=pipe)
        verdicts.append((v.similarity, v.same))
    return verdicts, shown


def model_embedder(pipe: FacePipeline) -> Embed:
    """Unit embeddings of photos (largest face), for choosing 'obviously different' catch
    pairs where no gender labels exist."""
    def embed(paths: list[Path]) -> np.ndarray:
        faces = torch.stack([pipe.align_path(p).pixels for p in paths])
        return torch.nn.functional.normalize(pipe.embed(faces), dim=1).numpy()
    return embed


def create_study(pairs_file: Path, out: Path, conditions: Sequence[str], per_condition: int,
                 backbone: str = "sface", scale: int = 5, seed: int = 0,
                 options: ExplainOptions | None = None, images: Path | None = None,
                 name: str = "", log: Callable[[str], None] | None = None,
                 draw_maps: bool = True, catch: int = 4,
                 progress: bool = False) -> CreatedStudy:
    """Make the study folder ``out`` from a pair set; returns the admin token (shown once).

    ``catch`` catch trials (``study.catch``) are mixed in among the real pairs and shown like
    them, help pictures included. ``draw_maps=False`` (a simulation or a dry run) loads no
    model: no help pictures, photos copied uncropped, and the model's verdicts come from the
    pair set (none for catch trials)."""
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
    if not draw_maps and meta.get("model") not in (None, backbone):
        raise InvalidArgument(f"the pair set was scored with {meta.get('model')}, not "
                              f"{backbone}; draw the maps or pass --backbone "
                              f"{meta.get('model')}")
    root = images or settings.current().lfw_images
    missing = [root / f for p in pairs for f in (p.a, p.b) if not (root / f).is_file()]
    if missing:
        raise InputNotFound(f"image of the pair set not found: {missing[0]}")
    pipe = FacePipeline(backbone) if draw_maps else None
    catches = choose_catch_pairs([f for p in pairs for f in (p.a, p.b)], catch, root, seed,
                                 model_embedder(pipe) if pipe is not None else None, log)
    items = mix_in(pairs, catches, seed)
    copied = copy_photos(out, [(root / i.a, root / i.b) for i in items], pipe, progress)
    methods = [c for c in conditions if c != NONE]
    verdicts: list[tuple[float | None, bool | None]]
    shown: dict[str, MapSpec | None]
    if pipe is not None:
        drawn, shown = draw_help_maps(out, copied, methods, pipe, options or ExplainOptions(),
                                      log, progress)
        verdicts = list(drawn)
    else:
        verdicts = [(i.model_score, i.model_same) if isinstance(i, StudyPair) else (None, None)
                    for i in items]
        shown = {m: None if m in TABLE_CONDITIONS else
                 display_map(get_method(m), [s.name for s in get_method(m).maps])
                 for m in methods}
    admin = secrets.token_urlsafe(24)
    people = make_participants(conditions, per_condition, len(items), seed)
    store = StudyStore(out / DB_NAME)
    try:
        store.init({
            "name": name or pairs_file.stem, "scale": str(scale), "backbone": backbone,
            "conditions": json.dumps(list(conditions)), "per_condition": str(per_condition),
            "admin_token_sha256": token_hash(admin), "seed": str(seed),
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pairs_source": str(pairs_file), "pairs_meta": json.dumps(meta),
            "maps": "drawn" if draw_maps else "none", "catch": str(len(catches)),
            "catch_min_correct": str(default_min_correct(len(catches))),
            "help_readings": json.dumps({m: TABLE_READING if sp is None else help_reading(sp)
                                         for m, sp in shown.items()}),
            "help_tables": json.dumps([m for m, sp in shown.items() if sp is None])})
        with store.transaction():
            store.db.executemany(
                "INSERT INTO pairs VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(k, str(ab[0].relative_to(out)), str(ab[1].relative_to(out)), int(i.same),
                  v[0], None if v[1] is None else int(v[1]),
                  i.mining_score if isinstance(i, StudyPair) else None, f"{i.a} | {i.b}",
                  i.kind if isinstance(i, CatchPair) else REAL)
                 for k, (i, ab, v) in enumerate(zip(items, copied, verdicts, strict=True))])
        for person in people:
            store.add_participant(person)
    finally:
        store.close()
    return CreatedStudy(out, admin, tuple(people), len(pairs), len(catches))


def copy_photos(out: Path, sources: Sequence[tuple[Path, Path]], pipe: FacePipeline | None,
                progress: bool) -> list[tuple[Path, Path]]:
    """Copy each pair's photos in as ``images/p<idx>_{a,b}.jpg`` (cropped to the labelled face
    when a model is loaded): the URL of a picture says nothing about what the pair is."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    copied = []
    bar = tqdm(sources, desc="photos", unit="pair", disable=not progress or pipe is None,
               file=sys.stderr)
    for idx, (a, b) in enumerate(bar):
        dest = (out / "images" / f"p{idx:04d}_a.jpg", out / "images" / f"p{idx:04d}_b.jpg")
        for src, dst in zip((a, b), dest, strict=True):
            if pipe is not None:
                crop_to_labelled_face(pipe, src, dst)
            else:
                shutil.copyfile(src, dst)
        copied.append(dest)
    return copied
