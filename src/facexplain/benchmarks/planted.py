"""The planted-difference game: every registered method on pairs whose difference is known.

For each pair of a planted set (``benchmarks.planted_pairs``: altered pairs, same-person
transplants, untouched pairs) every method explains the pair on the backbone's scorer, and each
of its ranking maps (the maps the faithfulness benchmark ranks, in the difference orientation)
is scored against the planted region of the altered face (``planted_metrics``). A derived row,
``occlusion-shapley``, splits the pairwise occlusion map between the faces by the Shapley value
of the two one-face occlusions: φ_A = (Δ_A + Δ_pair − Δ_B) / 2. A method whose details carry
component findings (``components``) is also scored by ``planted_components``: does it name the
planted component, and does it call any component "differs" on the genuine controls and on the
held-out impostor pairs appended to every set. Two sets (``SHAPES``): the landmark-shaped one
and the harder one pasted before alignment (``planted_box``). Per pair, results are appended
to a log, so an interrupted run resumes; the summary has bootstrap 95% CIs over pairs and each
method's seconds per pair.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.faithfulness import PairLog
from facexplain.benchmarks.planted_box import BOX_VERSION, build_box_set
from facexplain.benchmarks.planted_components import summarise_components
from facexplain.benchmarks.planted_metrics import map_scores, summarise
from facexplain.benchmarks.planted_pairs import (
    KINDS,
    PLANTED_VERSION,
    PlantedSet,
    add_impostors,
    build_planted_set,
)
from facexplain.benchmarks.planted_report import region_area_share
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache
from facexplain.datasets.lfw import read_pairs
from facexplain.datasets.lfw_people import read_female_names
from facexplain.errors import FacexplainError
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods import PATCH, STRIDE
from facexplain.methods.registry import all_methods, get_method
from facexplain.pipeline import FacePipeline
from facexplain.types import ComponentFinding

SHAPLEY = "occlusion-shapley"
SHAPES = ("landmark", "box")  # the landmark-shaped set; boxes/ellipses pasted before alignment


def game_methods() -> tuple[str, ...]:
    """Every method of ``--method all`` with a ranking map (the slow ones run when named)."""
    return tuple(name for name, info in all_methods().items() if info.rankings and info.in_all)


@dataclass(frozen=True)
class PlantedConfig:
    backbone: str = DEFAULT_BACKBONE
    mining: str = ""  # look-alike donors; default another built-in (as in calibration)
    methods: tuple[str, ...] = field(default_factory=game_methods)
    n_altered: int = 300
    n_controls: int = 100
    n_impostor: int = 100  # held-out impostor pairs, scored for component findings only
    shape: str = "landmark"  # which planted set (``SHAPES``)
    patch: int = PATCH.default  # the occlusion methods' own defaults (``methods._options``)
    stride: int = STRIDE.default
    ig_steps: int = 32
    samples: int | None = None  # per face, for the sampling methods (None: their defaults)
    xface_stride: int | None = None  # x-face occlusion's stride (None: the paper's)
    max_altered: int | None = None  # play only the first K altered pairs and their controls
    n_boot: int = 1000
    lfw: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    resume: bool = True
    progress: bool = True

    def mining_model(self) -> str:
        return self.mining or ("sface" if self.backbone == "dlib-resnet" else "dlib-resnet")


def game_options(cfg: PlantedConfig) -> ExplainOptions:
    return ExplainOptions(patch=cfg.patch, stride=cfg.stride, ig_steps=cfg.ig_steps,
                          samples=cfg.samples, xface_stride=cfg.xface_stride)


def planted_path(cfg: PlantedConfig, pipe: FacePipeline) -> Path:
    """Where the backbone's planted set is cached (named by what it depends on, the shape
    included: the landmark-shaped set keeps the name it had before the harder set)."""
    version = BOX_VERSION if cfg.shape == "box" else PLANTED_VERSION
    key = f"{version}-{cfg.backbone}-{cfg.mining_model()}-{cfg.n_altered}-{cfg.n_controls}"
    return cfg.cache_dir / "planted" / f"{key}-{pipe.scorer.fingerprint()[:12]}.npz"


def built_sets(cfg: PlantedConfig, pipe: FacePipeline) -> list[Path]:
    """Every set already built for this backbone's weights and donors, whatever its counts
    (``--altered``, ``--controls``), in name order."""
    prefix = f"{PLANTED_VERSION}-{cfg.backbone}-{cfg.mining_model()}-"
    suffix = f"-{pipe.scorer.fingerprint()[:12]}.npz"
    folder = cfg.cache_dir / "planted"
    counts = re.compile(r"[0-9]+-[0-9]+")
    return sorted(p for p in folder.glob(f"{PLANTED_VERSION}-*.npz")
                  if p.name.startswith(prefix) and p.name.endswith(suffix)
                  and counts.fullmatch(p.name[len(prefix):-len(suffix)]))


def planted_set(cfg: PlantedConfig, pipe: FacePipeline) -> tuple[PlantedSet, Path]:
    """The backbone's planted set of ``cfg.shape``, built once and cached under the cache
    folder, with ``cfg.n_impostor`` held-out impostor pairs appended (cheap: not cached)."""
    if cfg.shape not in SHAPES:
        raise FacexplainError(f"unknown planted set shape {cfg.shape!r}; known: "
                              f"{', '.join(SHAPES)}")
    path = planted_path(cfg, pipe)
    pairs, images, cache = (read_pairs(cfg.lfw / "pairs.txt"), cfg.lfw / "lfw-deepfunneled",
                            DiskCache(cfg.cache_dir))
    if path.is_file():
        game = PlantedSet.load(path)
    else:
        build = build_box_set if cfg.shape == "box" else build_planted_set
        game = build(pipe, FacePipeline(cfg.mining_model()), pairs,
                     read_female_names(cfg.lfw / "female_names.txt"), images, cache,
                     cfg.n_altered, cfg.n_controls, cfg.progress)
        game.save(path)
    return add_impostors(game, pipe, pairs, images, cache, cfg.n_impostor, cfg.progress), path


def _rows(infos: dict[str, MethodInfo]) -> list[str]:
    rows = [r.row(name) for name, info in infos.items() for r in info.rankings]
    if "occlusion" in infos and "occlusion-per-face" in infos:
        rows.append(SHAPLEY)
    return rows


def _maps_of(info: MethodInfo, maps: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {r.row(info.name): r.ranking(maps, "difference").detach().float().numpy()
            for r in info.rankings}


Findings = dict[str, list[dict[str, Any]]]


def component_findings(meta: object) -> list[dict[str, Any]] | None:
    """A method's component findings (``meta.components``) as dicts, or None when it has none."""
    found = getattr(meta, "components", None)
    if not found or not all(isinstance(c, ComponentFinding) for c in found):
        return None
    return [c.to_dict() for c in found]


def explain_planted(pipe: FacePipeline, explainers: dict[str, Any], infos: dict[str, MethodInfo],
                    pair: torch.Tensor
                    ) -> tuple[dict[str, np.ndarray], dict[str, float], Findings]:
    """Every ranking map (difference orientation) of every method, seconds per method (by map
    row, and by method name for one with component findings), and the component findings."""
    maps: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    findings: Findings = {}
    for name, explainer in explainers.items():
        started = time.perf_counter()
        result = explainer.explain(pair)
        spent = round(time.perf_counter() - started, 3)
        found = component_findings(result.meta)
        if found is not None:
            findings[name], seconds[name] = found, spent
        for row, values in _maps_of(infos[name], result.maps).items():
            maps[row], seconds[row] = values, spent
        if name in ("occlusion", "occlusion-per-face"):
            maps[f"_{name}"] = result.maps["delta"].detach().float().numpy()
    if "_occlusion" in maps and "_occlusion-per-face" in maps:
        pair_delta, one = maps.pop("_occlusion")[0], maps.pop("_occlusion-per-face")
        maps[SHAPLEY] = np.stack([(one[0] + pair_delta - one[1]) / 2,
                                  (one[1] + pair_delta - one[0]) / 2])
        seconds[SHAPLEY] = seconds["occlusion"] + seconds["occlusion-per-face"]
    return maps, seconds, findings


@dataclass
class GameRun:
    """One backbone's game in progress: its set, explainers and the log of finished pairs."""

    cfg: PlantedConfig
    pipe: FacePipeline
    game: PlantedSet
    path: Path
    infos: dict[str, MethodInfo]
    explainers: dict[str, Any]
    log: PairLog | None  # the driver's; a Ray worker has none (the driver records)

    def key(self, i: int) -> str:
        p = self.game.pairs[i]
        return f"{i}:{p.kind}:{p.pair_id}"

    @property
    def done(self) -> dict[str, dict[str, Any]]:
        if self.log is None:
            raise RuntimeError("a worker's game run keeps no log")
        return self.log.done

    def record(self, rec: dict[str, Any]) -> None:
        if self.log is None:
            raise RuntimeError("a worker's game run keeps no log")
        self.log.add(rec)

    def played(self) -> list[int]:
        """The pairs of this run: all, or the first ``max_altered`` altered pairs and the
        controls made from the same genuine pairs."""
        pairs = self.game.pairs
        k = self.cfg.max_altered
        if k is None:
            return list(range(len(pairs)))
        altered = [p for p in pairs if p.kind == "altered"]
        keep = {p.pair_id for p in altered[:k]}
        impostors = [i for i, p in enumerate(pairs) if p.kind == "impostor"]
        share = impostors[:len(impostors) * k // max(len(altered), 1)]  # as many in proportion
        return [i for i, p in enumerate(pairs) if p.pair_id in keep and p.kind != "impostor"
                ] + share

    def todo(self) -> list[int]:
        return [i for i in self.played() if self.key(i) not in self.done]

    def play(self, i: int) -> dict[str, Any]:
        """Every map of pair ``i``, scored: the record the log keeps."""
        p = self.game.pairs[i]
        maps, seconds, findings = explain_planted(self.pipe, self.explainers, self.infos,
                                                  self.game.tensor(i))
        face = p.face if p.face >= 0 else int(i % 2)  # untouched: the region on one face
        scored = p.kind != "impostor"  # an impostor pair has no planted region to score
        return {"pair": self.key(i), "kind": p.kind, "region": p.region, "face": p.face,
                "drop": round(p.drop, 5), "seconds": seconds, "components": findings,
                "scores": {row: map_scores(v, self.game.masks[i], face)
                           for row, v in maps.items()} if scored else {}}


def start_game(cfg: PlantedConfig, worker: bool = False) -> GameRun:
    """The planted set (built once), the methods (heads made where missing) and the log; a
    Ray ``worker`` neither makes heads nor touches the driver's log."""
    pipe = FacePipeline(cfg.backbone, forward_runtime=False)
    game, path = planted_set(cfg, pipe)
    infos = {name: get_method(name) for name in cfg.methods}
    for info in infos.values():
        if not worker and info.prepare is not None:
            info.prepare(cfg.backbone, cfg.progress)
    explainers = {name: info.build(pipe.scorer, game_options(cfg)) for name, info in
                  infos.items()}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    key = {**{k: v for k, v in asdict(cfg).items() if k in ("backbone", "patch", "stride",
                                                            "ig_steps")},
           **{k: v for k, v in asdict(cfg).items() if k in ("samples", "xface_stride")
              and v is not None},
           "methods": sorted(cfg.methods), "set": digest, "weights": pipe.scorer.fingerprint(),
           **({"impostors": cfg.n_impostor} if cfg.n_impostor else {})}
    # named by the whole configuration: another method list on the same set keeps its own log
    # (a log named by the set alone was rewritten, losing the other run's pairs)
    config = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    log = None if worker else PairLog(
        cfg.cache_dir / "planted" / f"log-{cfg.backbone}-{digest}-{config}.jsonl", key,
        cfg.resume)
    return GameRun(cfg, pipe, game, path, infos, explainers, log)


Player = Callable[[GameRun, list[int]], None]


def play_here(run: GameRun, todo: list[int]) -> None:
    """The pairs one after another in this process (``batch.game`` spreads them on Ray)."""
    for i in tqdm(todo, desc=f"game {run.cfg.backbone}", disable=not run.cfg.progress):
        run.record(run.play(i))


def run_planted(cfg: PlantedConfig, player: Player = play_here) -> dict[str, Any]:
    """Play the game on ``cfg.backbone`` (the pairs not in the log yet); the summary per map
    row and pair kind."""
    started = time.perf_counter()
    run = start_game(cfg)
    player(run, run.todo())
    if run.todo():
        raise FacexplainError(f"{len(run.todo())} planted pairs could not be explained (their "
                              "workers failed); run the same command again to retry them")
    game = run.game
    records: list[dict[str, Any]] = [run.done[run.key(i)] for i in run.played()]
    rows = _rows(run.infos)
    # per-face rows: maps that differ between the faces (a pairwise map never decides)
    per_face = {r for r in rows if sum(rec["scores"][r]["which"] >= 0 for rec in records
                                       if rec["kind"] == "altered") > 0}
    played = [game.pairs[i] for i in run.played()]
    kinds = {k: sum(1 for p in played if p.kind == k) for k in KINDS}
    return {
        "backbone": cfg.backbone, "mining_model": cfg.mining_model(), "set": str(run.path),
        "shape": cfg.shape,
        "region_area_share": round(region_area_share(game), 4),
        "pairs": kinds, "regions": {r: sum(1 for p in played if p.kind == "altered" and
                                            p.region == r) for r in ("eyes", "brows", "nose",
                                                                     "mouth")},
        "mean_drop": round(float(np.mean([p.drop for p in played if p.kind == "altered"])), 4),
        "margin": game.margin,
        "options": {"patch": cfg.patch, "stride": cfg.stride, "ig_steps": cfg.ig_steps,
                    "samples": cfg.samples, "xface_stride": cfg.xface_stride},
        "rows": summarise(records, rows, per_face, cfg.n_boot),
        "per_face_rows": sorted(per_face),
        "components": summarise_components(records, cfg.n_boot),
        "weights": run.pipe.scorer.fingerprint(),
        "seconds": round(time.perf_counter() - started, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"),
    }


def example_maps(cfg: PlantedConfig, n: int = 4) -> tuple[PlantedSet, list[int],
                                                         list[dict[str, np.ndarray]]]:
    """The first ``n`` altered pairs (one per region where possible) and every map of them."""
    pipe = FacePipeline(cfg.backbone, forward_runtime=False)
    game, _ = planted_set(cfg, pipe)
    picked: list[int] = []
    for region in ("eyes", "brows", "nose", "mouth"):
        picked += [i for i, p in enumerate(game.pairs)
                   if p.kind == "altered" and p.region == region][:1]
    picked = picked[:n]
    infos = {name: get_method(name) for name in cfg.methods}
    explainers = {name: info.build(pipe.scorer, game_options(cfg)) for name, info in
                  infos.items()}
    return game, picked, [explain_planted(pipe, explainers, infos, game.tensor(i))[0]
                          for i in picked]
