"""Sanity checks for explanations: model-parameter randomisation (Adebayo et al., 2018).

Why: a map that does not change when the model's weights are replaced by random ones explains
the input, not the model. For every registered method the maps of real LFW pairs are compared
with the maps of the same pairs under (a) a cascade that re-draws the weights from the top of
the network down (the last quarter of the parameter tensors in forward order, then half, then
three quarters) and (b) full re-initialisation. Similarity is the Spearman rank correlation of
the signed map (``delta``) and of its magnitude, and SSIM of the magnitude; the chance level is
the same similarity between the real maps of *unrelated* pairs. A map passes when, fully
randomised, its similarity to the real map is no higher than chance + ``margin``.

Finished maps are kept on disk (keyed by the original weights, the state, the options and the
pair), so an interrupted run resumes where it stopped.

Weights are re-drawn per tensor from a normal distribution with that tensor's own mean and
standard deviation (keeping the scale, so the network stays numerically sane); batch-norm
statistics are kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from tqdm import tqdm

from facexplain import settings
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS, select_heldout_pairs
from facexplain.benchmarks.registry import measured_on
from facexplain.benchmarks.sanity_report import SanityResult
from facexplain.benchmarks.sanity_stats import (
    MEASURES,
    MIN_PAIRS,
    excess_with_ci,
    identical_groups,
    pairing_matrix,
    verdict,
)
from facexplain.cache import DiskCache
from facexplain.datasets.lfw import read_pairs
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods import PATCH, STRIDE
from facexplain.methods.registry import all_methods, get_method
from facexplain.pipeline import FacePipeline

CASCADE = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class SanityConfig:
    backbone: str = "sface"
    n_pairs: int = MIN_PAIRS
    offset: int = 0  # skip the pairs a selection of this size takes (a disjoint second set)
    methods: tuple[str, ...] = field(default_factory=lambda: tuple(
        name for name, info in all_methods().items() if info.in_all))
    cascade: tuple[float, ...] = CASCADE
    margin: float = 0.2
    patch: int = PATCH.default  # the occlusion methods' own defaults (``methods._options``)
    stride: int = STRIDE.default
    ig_steps: int = 32  # fixed: random weights need not converge, and time must stay bounded
    samples: int | None = None  # per face, for the sampling methods (None: their defaults)
    xface_stride: int | None = None
    n_boot: int = 1000
    seed: int = 0
    progress: bool = True


class _FirstUse(TorchFunctionMode):
    """Records the order in which a forward pass first reads each tensor of ``watched``."""

    def __init__(self, watched: dict[int, str]) -> None:
        super().__init__()
        self.watched = watched
        self.order: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        for a in (*args, *(kwargs or {}).values()):
            name = self.watched.get(id(a)) if isinstance(a, torch.Tensor) else None
            if name is not None and name not in self.order:
                self.order.append(name)
        return func(*args, **(kwargs or {}))


def parameters_in_forward_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Parameter names in the order one forward pass first uses them (unused ones last)."""
    named = dict(model.named_parameters())
    with torch.no_grad(), _FirstUse({id(p): n for n, p in named.items()}) as mode:
        model(x)
    return mode.order + [n for n in named if n not in mode.order]


def randomize_top(model: nn.Module, order: list[str], fraction: float, seed: int) -> int:
    """Re-draw the last ``fraction`` of the parameters in ``order`` (in place); how many."""
    named = dict(model.named_parameters())
    k = math.ceil(fraction * len(order))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in order[len(order) - k:]:
            p = named[name]
            mean, std = float(p.mean()), float(p.std()) if p.numel() > 1 else 0.0
            p.copy_(torch.randn(p.shape, generator=gen) * (std or abs(mean) or 1.0) + mean)
    return k


@dataclass(frozen=True)
class _MapCache:
    """Finished maps on disk, so an interrupted run resumes: keyed by the original weights, the
    weight state (its randomisation is a function of the seed), the options and the pair."""

    cache: DiskCache
    prefix: str

    def key(self, method: str, source: str, state: str, pair: str) -> str:
        return f"{self.prefix}:{method}:{source}:{state}:{pair}"


def _source_tag(explainer: object) -> str:
    """Which head a method reads (xCos, part filters), with its file's size and time: a
    retrained head at the same path must not get the old head's maps back."""
    source = str(getattr(explainer, "source", "") or "")
    path = Path(source)
    if source and path.is_file():
        st = path.stat()
        return f"{source}@{st.st_size}:{st.st_mtime_ns}"
    return source


def _maps(infos: list[MethodInfo], pipe: FacePipeline, faces: list[torch.Tensor],
          options: ExplainOptions, bar: Any, ids: list[str], state: str,
          store: _MapCache) -> dict[str, list[torch.Tensor]]:
    """Each method's signed ranking map of every pair under the model's current weights."""
    out = {}
    for info in infos:
        explainer = info.build(pipe.scorer, options)
        key = (info.rankings[0].map if info.rankings
               else next(m.name for m in info.maps if m.signed))
        maps, source = [], _source_tag(explainer)
        for face, pair in zip(faces, ids, strict=True):
            cache_key = store.key(info.name, source, state, pair)
            hit = store.cache.get(cache_key)
            if hit is None:
                hit = {"map": explainer.explain(face).maps[key].detach().float().numpy()}
                store.cache.put(cache_key, **hit)
            maps.append(torch.from_numpy(hit["map"]))
            bar.update(1)
        out[info.name] = maps
    return out


def run_sanity(cfg: SanityConfig, pipeline: FacePipeline | None = None) -> dict[str, object]:
    """Similarity of each method's maps to its real maps under each randomisation, with the
    excess over chance and a verdict (or "inconclusive") from its bootstrap interval."""
    started = time.perf_counter()
    s = settings.current()
    pairs = select_heldout_pairs(read_pairs(s.lfw_pairs), cfg.n_pairs, HELDOUT_FOLDS, cfg.offset)
    pipe = pipeline or FacePipeline(cfg.backbone, forward_runtime=False)  # edits weights
    faces = [pipe.pair(p.path_a(s.lfw_images), p.path_b(s.lfw_images)).tensor for p in pairs]
    infos = [get_method(m) for m in cfg.methods]
    for info in infos:
        if info.prepare is not None:
            info.prepare(pipe.spec.name, cfg.progress)
    options = ExplainOptions(patch=cfg.patch, stride=cfg.stride, ig_steps=cfg.ig_steps,
                             samples=cfg.samples, xface_stride=cfg.xface_stride)
    original = {k: v.clone() for k, v in pipe.model.state_dict().items()}
    order = parameters_in_forward_order(pipe.model, faces[0])
    states = [("real", 0.0), *((f"cascade-{round(100 * f)}%", f) for f in cfg.cascade),
              ("full", 1.0)]
    ids = [f"{p.name_a}_{p.index_a:04d}|{p.name_b}_{p.index_b:04d}" for p in pairs]
    store = _MapCache(DiskCache(s.cache), f"sanity-map:v1:{pipe.scorer.fingerprint()}:"
                      f"{cfg.seed}:{cfg.patch}:{cfg.stride}:{cfg.ig_steps}:"
                      f"{cfg.samples}:{cfg.xface_stride}")
    bar = tqdm(total=len(faces) * len(infos) * len(states), desc=f"sanity {cfg.backbone}",
               disable=not cfg.progress)
    try:
        real = _maps(infos, pipe, faces, options, bar, ids, "real", store)
        groups = identical_groups(real)
        leaders = [get_method(g[0]) for g in groups]
        maps: dict[str, dict[str, list[torch.Tensor]]] = {
            g[0]: {"real": real[g[0]]} for g in groups}
        for state, fraction in states[1:]:
            pipe.model.load_state_dict(original)
            randomize_top(pipe.model, order, fraction, cfg.seed)
            for name, ms in _maps(leaders, pipe, faces, options, bar, ids, state,
                                  store).items():
                maps[name][state] = ms
    finally:
        pipe.model.load_state_dict(original)
        bar.close()
    rows = [_row(g, maps[g[0]], states, cfg) for g in groups]
    return {
        "backbone": cfg.backbone, "n_pairs": len(pairs), "offset": cfg.offset,
        "methods": list(cfg.methods), "weights": pipe.scorer.fingerprint(),
        "states": [st for st, _ in states], "cascade_fractions": list(cfg.cascade),
        "n_parameter_tensors": len(order), "margin": cfg.margin,
        "options": {"patch": cfg.patch, "stride": cfg.stride, "ig_steps": cfg.ig_steps,
                    **({"samples": cfg.samples} if cfg.samples is not None else {}),
                    **({"xface_stride": cfg.xface_stride} if cfg.xface_stride is not None
                       else {})},
        "pairs": ids,
        "identical": [g for g in groups if len(g) > 1],
        "rows": rows, "seconds": round(time.perf_counter() - started, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"),
    }


def _row(group: list[str], by_state: dict[str, list[torch.Tensor]],
         states: list[tuple[str, float]], cfg: SanityConfig) -> dict[str, Any]:
    real = by_state["real"]
    pairings = {m: pairing_matrix(real, fn) for m, fn in MEASURES.items()}
    row: dict[str, Any] = {"method": group[0], "same_as": group[1:]}
    for state, _ in states[1:]:
        row[state] = {m: float(np.mean([fn(real[i], by_state[state][i])
                                        for i in range(len(real))]))
                      for m, fn in MEASURES.items()}
    own = {m: np.array([fn(real[i], by_state["full"][i]) for i in range(len(real))])
           for m, fn in MEASURES.items()}
    row["excess"] = {m: excess_with_ci(own[m], pairings[m], cfg.n_boot, cfg.seed)
                     for m in MEASURES}
    row["chance"] = {m: row["excess"][m]["chance"] for m in MEASURES}
    row["verdict"] = {m: verdict(row["excess"][m], cfg.margin, len(real)) for m in MEASURES}
    row["pass"] = {m: row["verdict"][m] == "pass" for m in MEASURES}
    return row


def format_sanity_table(result: dict[str, object]) -> str:
    """The terminal table of a ``run_sanity`` result (``SanityResult.text``)."""
    return SanityResult.from_json(dict(result)).text()


def sanity_markdown(result: dict[str, object]) -> str:
    """The verdicts as a markdown table (``SanityResult.table``)."""
    return SanityResult.from_json(dict(result)).table()


def plot_sanity(result: dict[str, object], path: Path) -> Path:
    """The verdicts' figure (``SanityResult.figure``)."""
    return SanityResult.from_json(dict(result)).figure(path)
