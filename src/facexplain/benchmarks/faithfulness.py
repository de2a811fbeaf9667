"""Faithfulness of pair explanations on held-out LFW pairs: deletion and insertion curves.

Pairs come from folds 6-10 (indices 5..9) of ``pairs.txt``, the *last* pairs of each class in
each fold, so they are disjoint from the occlusion-statistics set (the first pairs of every
fold) whose Θ is calibrated; the faithfulness ranking never uses Θ anyway (Θ only rescales Δ).
For every pair each method explains the pair score; impostor pairs are scored along the
difference-map curves, genuine pairs along the similarity-map curves (``metrics.
faithfulness``). Every map a method declares in ``MethodInfo.rankings`` is its own row (signed
Δ maps, the unsigned ``-abs`` pictures, xCos's S, W and S x W), scored by deletion and by
insertion, with single pixels and with blocks.

Two seeded random orders are scored on every pair, because they differ: the same random
positions in both faces (as a pairwise map removes them) and independent positions per face.
Hiding the same scattered pixels in both faces stamps a shared pattern on them and by itself
raises an impostor pair's similarity, so each row is compared with the random order of its
own structure (occlusion: shared; per-face maps: per face), recorded in ``baseline_of_row``.

A run is long (hours on a CPU), so every finished pair is appended to a JSONL file in the cache,
keyed by the configuration and the weights: a rerun resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.benchmarks.pair_sets import (
    HELDOUT_FOLDS,
    interleaved,
    pair_id,
    select_heldout_pairs,
    study_pairs_as_lfw,
)
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache
from facexplain.datasets.faces import check_images_exist, locate_all
from facexplain.datasets.lfw import LfwPair, read_pairs, unique_images
from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer
from facexplain.explain.gradients import reference_for
from facexplain.explain.scorer import clean_score
from facexplain.io import load_image
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods import PATCH, STRIDE
from facexplain.methods.registry import all_methods, get_method
from facexplain.metrics.faithfulness import (
    DEFAULT_FRACTIONS,
    MODES,
    CurveSummary,
    curve_aucs,
    is_pairwise,
    pixel_curves,
    random_ranking,
    summarize,
)
from facexplain.pipeline import FacePipeline


def ranked_methods() -> tuple[str, ...]:
    """Every method of ``--method all`` with at least one map that ranks pixels (``rankings``);
    the slow sampling methods run when named."""
    return tuple(name for name, info in all_methods().items() if info.rankings and info.in_all)


RANDOM_SHARED = "random-shared"  # same random positions in both faces
RANDOM_PER_FACE = "random-per-face"  # independent random positions per face
BASELINES = (RANDOM_SHARED, RANDOM_PER_FACE)


def curve_id(mode: str, block: int) -> str:
    """Name of one protocol: 'deletion-px', 'insertion-b8', ..."""
    return f"{mode}-{'px' if block == 1 else f'b{block}'}"


@dataclass(frozen=True)
class FaithfulnessConfig:
    backbone: str = "sface"
    n_pairs: int = 300
    methods: tuple[str, ...] = field(default_factory=ranked_methods)
    fill: str = "mean-face"
    patch: int = PATCH.default  # the occlusion methods' own defaults (``methods._options``)
    stride: int = STRIDE.default
    ig_steps: int | None = None  # None: adaptive, as the CLI's explain
    samples: int | None = None  # per face, for the sampling methods (None: their defaults)
    xface_stride: int | None = None
    modes: tuple[str, ...] = MODES
    blocks: tuple[int, ...] = (1, 8)
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    folds: tuple[int, ...] = HELDOUT_FOLDS
    # a study pair set (``facexplain study pairs``: look-alike impostors) instead of the folds
    pairs_file: Path | None = None
    seed: int = 0
    device: str = "cpu"
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    resume: bool = True
    progress: bool = True

    def protocols(self) -> list[tuple[str, str, int]]:
        """(curve id, mode, block) of every curve family the run scores."""
        return [(curve_id(m, b), m, b) for m in self.modes for b in self.blocks]

    def key_fields(self) -> dict[str, object]:
        """What the per-pair results depend on (device aside: it only shifts the last digits;
        the number of pairs aside: a smaller selection is a subset of a larger one)."""
        d = asdict(self)
        for k in ("samples", "xface_stride"):  # keeps the keys of runs made before they existed
            if d[k] is None:
                d.pop(k)
        for k in ("device", "cache_dir", "resume", "progress", "n_pairs"):
            d.pop(k)
        if self.pairs_file is None:  # keeps the keys (and caches) of runs made before it existed
            d.pop("pairs_file")
        else:
            d.pop("folds")
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


@dataclass(frozen=True)
class FaithfulnessResult:
    summary: dict[str, object]
    rows: list[CurveSummary]
    # curve id -> kind -> row name -> (P, K) curves
    curves: dict[str, dict[str, dict[str, np.ndarray]]]

    def _names(self, key: str) -> list[str]:
        value = self.summary[key]
        assert isinstance(value, list), key
        return [str(v) for v in value]

    @property
    def protocols(self) -> list[str]:
        """Curve ids (``deletion-px``, ``insertion-b8``, ...) in the order they were run."""
        return self._names("protocols")

    @property
    def row_names(self) -> list[str]:
        """Every map row (a method's ranking maps), in the order of the run."""
        return self._names("rows")

    @property
    def seconds_per_pair(self) -> dict[str, float]:
        value = self.summary["seconds_per_pair"]
        assert isinstance(value, dict)
        return {str(k): float(v) for k, v in value.items()}

    def to_json(self) -> dict[str, object]:
        """The summary, as ``--json`` writes it (curves stay in the pair log)."""
        return dict(self.summary)


def select_pairs(cfg: FaithfulnessConfig) -> list[LfwPair]:
    """The run's pairs: n/2 genuine and n/2 impostor from the held-out folds, or the first n
    of each class from a study pair set."""
    if cfg.pairs_file is None:
        return select_heldout_pairs(read_pairs(cfg.pairs), cfg.n_pairs, cfg.folds)
    pairs = study_pairs_as_lfw(cfg.pairs_file)
    half = cfg.n_pairs // 2
    genuine = [p for p in pairs if p.same][:half]
    impostor = [p for p in pairs if not p.same][:half]
    if not genuine or not impostor:
        raise InvalidArgument(f"{cfg.pairs_file} needs genuine and impostor pairs")
    return genuine + impostor


def _explainers(cfg: FaithfulnessConfig, pipe: FacePipeline, fill: torch.Tensor
                ) -> dict[str, Explainer]:
    """One explainer per method (from the registry), all removing pixels with the same ``fill``
    (2, 3, H, W)."""
    options = ExplainOptions(patch=cfg.patch, stride=cfg.stride, fill=fill, gradient_fill=fill,
                             ig_steps=cfg.ig_steps, samples=cfg.samples,
                             xface_stride=cfg.xface_stride)
    return {m: get_method(m).build(pipe.scorer, options) for m in cfg.methods}


def _check_config(cfg: FaithfulnessConfig, size: int) -> None:
    from facexplain.explain.fills import FILLS

    valid = [name for name, info in all_methods().items() if info.rankings]  # slow ones too
    unknown = [m for m in cfg.methods if m not in valid]
    if unknown or not cfg.methods:
        raise InvalidArgument(f"unknown or unranked method(s) {unknown}; valid: "
                              f"{', '.join(valid)}")
    if cfg.fill not in FILLS:
        raise InvalidArgument(f"unknown fill '{cfg.fill}'; valid: {', '.join(FILLS)}")
    bad_modes = [m for m in cfg.modes if m not in MODES]
    if bad_modes or not cfg.modes:
        raise InvalidArgument(f"unknown curve mode(s) {bad_modes}; valid: {', '.join(MODES)}")
    bad = [b for b in cfg.blocks if b < 1 or size % b]
    if bad or not cfg.blocks:
        raise InvalidArgument(f"block(s) {bad} do not divide the {size}x{size} crop")


class PairLog:
    """Finished pairs of one configuration, one JSON line each: what makes a run resumable."""

    def __init__(self, path: Path, key: dict[str, object], enabled: bool) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}  # parsed JSON lines: the log's own format
        header = json.dumps({"key": key}, sort_keys=True)
        intact = False
        if enabled and path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            intact = bool(lines) and lines[0] == header
            for line in lines[1:] if intact else []:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    intact = False  # a line cut by a kill: recompute from there
                    break
                self.done[str(rec["pair"])] = rec
        if not intact:  # rewrite: header + the intact records (left alone otherwise, so a
            path.parent.mkdir(parents=True, exist_ok=True)  # reader never races a writer)
            with path.open("w", encoding="utf-8") as f:
                f.write(header + "\n")
                for rec in self.done.values():
                    f.write(json.dumps(rec) + "\n")

    def add(self, rec: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        self.done[str(rec["pair"])] = rec


def _explain_pair(cfg: FaithfulnessConfig, pipe: FacePipeline, explainers: dict[str, Explainer],
                  pair: torch.Tensor, fill: torch.Tensor, same: bool, seed: int
                  ) -> dict[str, Any]:
    """All curves of one pair: {curve id: {row: curve}}, timings and method details."""
    kind = "similarity" if same else "difference"
    size = int(pair.shape[-1])
    rankings: dict[str, torch.Tensor] = {
        RANDOM_SHARED: random_ranking(size, size, seed, True).to(pair.device),
        RANDOM_PER_FACE: random_ranking(size, size, seed, False).to(pair.device),
    }
    seconds: dict[str, float] = {}
    notes: dict[str, dict[str, object]] = {}
    for method, explainer in explainers.items():
        t0 = time.perf_counter()
        explained = explainer.explain(pair)
        seconds[method] = round(time.perf_counter() - t0, 3)
        notes[method] = {k: v for k, v in explained.meta.to_json().items()
                         if k != "seconds" and isinstance(v, str | int | float | bool)}
        for ranked in get_method(method).rankings:
            rankings[ranked.row(method)] = ranked.ranking(explained.maps, kind).to(pair.device)
    score_fn = pipe.scorer
    start = {"deletion": clean_score(score_fn, pair),
             "insertion": float(score_fn(fill[0:1], fill[1:2]).reshape(-1)[0])}
    unique: dict[bytes, torch.Tensor] = {}  # identical maps (saliency = deconv on SFace) once
    row_key: dict[str, bytes] = {}
    for row, ranking in rankings.items():
        row_key[row] = hashlib.sha1(ranking.detach().cpu().double().numpy().tobytes()).digest()
        unique.setdefault(row_key[row], ranking)
    curves: dict[str, dict[str, list[float]]] = {}
    for cid, mode, block in cfg.protocols():
        done = dict(zip(unique, pixel_curves(score_fn, pair, list(unique.values()), fill,
                                             cfg.fractions, seed=seed, block=block, mode=mode,
                                             first_score=start[mode], batch_size=48),
                        strict=True))
        curves[cid] = {row: [round(float(v), 6) for v in done[key]]
                       for row, key in row_key.items()}
    pairwise = {row: is_pairwise(r) for row, r in rankings.items()}
    return {"kind": kind, "original": start["deletion"], "curves": curves,
            "seconds": seconds, "notes": notes, "pairwise": pairwise}


def run_faithfulness(cfg: FaithfulnessConfig, pipeline: FacePipeline | None = None
                     ) -> FaithfulnessResult:
    """Deletion and insertion curves of every method (and random order) on held-out pairs."""
    started = time.perf_counter()
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument("--device cuda requested but torch sees no CUDA device")
    infos: dict[str, MethodInfo] = {m: get_method(m) for m in cfg.methods if m in all_methods()}
    pairs = interleaved(select_pairs(cfg))
    paths = unique_images(pairs, cfg.images)
    check_images_exist(paths)
    pipe = pipeline or FacePipeline(cfg.backbone)
    _check_config(cfg, pipe.spec.input_size)
    for info in infos.values():
        if info.prepare is not None:  # a missing xCos head is trained once, before the run
            info.prepare(cfg.backbone, cfg.progress)
    located = locate_all(pipe, paths, DiskCache(cfg.cache_dir), progress=False)
    pipe.model.to(device)
    template = pipe.spec.template
    size = pipe.spec.input_size
    per_pair_fill = cfg.fill not in ("mean-face", "zero")  # channel-mean, blur: from the pair
    fill = reference_for(torch.zeros(2, 3, size, size), "zero" if per_pair_fill else cfg.fill,
                         template).to(device)
    explainers = _explainers(cfg, pipe, fill)
    sources = {m: str(getattr(e, "source", "") or "") for m, e in explainers.items()}
    key = {**cfg.key_fields(), "model": pipe.scorer.fingerprint(), "sources": sources}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    log = PairLog(cfg.cache_dir / "faithfulness" / f"{cfg.backbone}-{digest}.jsonl", key,
                  cfg.resume)
    resumed = sum(pair_id(p) in log.done for p in pairs)
    bar = tqdm(pairs, desc=f"faithfulness {cfg.backbone}", unit="pair", disable=not cfg.progress,
               initial=0)
    for i, p in enumerate(bar):
        if pair_id(p) in log.done:
            continue
        pair = torch.stack([
            warp_face(load_image(q), located[q].detection.landmarks, pipe.spec.alignment)
            for q in (p.path_a(cfg.images), p.path_b(cfg.images))
        ])
        if per_pair_fill:  # fills are built on the CPU, then follow the pair
            fill = reference_for(pair, cfg.fill, template).to(device)
            explainers = _explainers(cfg, pipe, fill)
        rec = _explain_pair(cfg, pipe, explainers, pair.to(device), fill, p.same, cfg.seed + i)
        log.add({"pair": pair_id(p), **rec})
        bar.set_postfix(kind=str(rec["kind"])[:3], sim=f"{float(rec['original']):.3f}")
    records = [log.done[pair_id(p)] for p in pairs]
    result = _assemble(cfg, infos, pairs, records, resumed, time.perf_counter() - started,
                       device, log.path)
    result.summary["weights"] = pipe.scorer.fingerprint()
    return result


def _assemble(cfg: FaithfulnessConfig, infos: dict[str, MethodInfo], pairs: list[LfwPair],
              records: list[dict[str, Any]], resumed: int, seconds: float,
              device: torch.device, log_path: Path) -> FaithfulnessResult:
    """Per-pair records -> curve arrays, summaries against random, and the JSON summary."""
    rows = [r.row(m) for m, info in infos.items() for r in info.rankings]
    arrays: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for cid, _, _ in cfg.protocols():
        arrays[cid] = {}
        for kind in ("difference", "similarity"):
            recs = [r for r in records if r["kind"] == kind]
            if recs:
                arrays[cid][kind] = {row: np.asarray([r["curves"][cid][row] for r in recs])
                                     for row in [*rows, *BASELINES]}
    pairwise = records[0]["pairwise"]
    assert isinstance(pairwise, dict)
    baseline_of = {r: RANDOM_SHARED if pairwise.get(r) else RANDOM_PER_FACE for r in rows}
    summaries = [summarize(row, kind, cfg.fractions, by_row[row], by_row[baseline_of[row]],
                           mode=mode, protocol=cid)
                 for cid, mode, _ in cfg.protocols()
                 for kind, by_row in arrays[cid].items() for row in rows]
    same = np.asarray([p.same for p in pairs])
    original = np.asarray([float(r["original"]) for r in records])
    times = {m: round(float(np.mean([r["seconds"][m] for r in records])), 3)
             for m in infos}
    summary: dict[str, object] = {
        "backbone": cfg.backbone,
        "n_pairs": len(pairs),
        "n_genuine": int(same.sum()),
        "n_impostor": int((~same).sum()),
        "folds": [f + 1 for f in cfg.folds] if cfg.pairs_file is None else [],
        "pair_selection": "last pairs of each class block in each fold, round-robin over folds"
        if cfg.pairs_file is None
        else f"study pair set {cfg.pairs_file.name} (the first of each class)",
        "methods": list(infos),
        "rows": rows,
        "fill": cfg.fill,
        "occlusion": {"patch": cfg.patch, "stride": cfg.stride},
        "ig_steps": cfg.ig_steps if cfg.ig_steps is not None else "adaptive",
        "protocols": [cid for cid, _, _ in cfg.protocols()],
        "fractions": list(cfg.fractions),
        "seed": cfg.seed,
        "device": str(device),
        "baseline_of_row": baseline_of,
        "method_meta_first_pair": records[0]["notes"],
        "summaries": [s.to_dict() for s in summaries],
        "random": {cid: {k: {b: {"auc_mean": float(curve_aucs(cfg.fractions, v[b]).mean()),
                                 "mean_curve": [round(float(x), 6) for x in v[b].mean(axis=0)]}
                             for b in BASELINES} for k, v in by_kind.items()}
                   for cid, by_kind in arrays.items()},
        "seconds_per_pair": times,
        "original_similarity_mean": {"genuine": float(original[same].mean()) if same.any()
                                     else None,
                                     "impostor": float(original[~same].mean()) if (~same).any()
                                     else None},
        "per_pair_auc": {cid: {k: {r: [round(float(a), 5) for a in curve_aucs(cfg.fractions, c)]
                                   for r, c in v.items()} for k, v in by_kind.items()}
                         for cid, by_kind in arrays.items()},
        "pairs": [pair_id(p) for p in pairs],
        "resumed_pairs": resumed,
        "pair_log": str(log_path),
        "seconds": round(seconds, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"
                      + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda"
                         else "")),
    }
    return FaithfulnessResult(summary, summaries, arrays)
