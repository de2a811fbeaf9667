"""Sanity checks for explanations: model-parameter randomisation (Adebayo et al., 2018).

Why: a map that does not change when the model's weights are replaced by random ones explains
the input, not the model. For every registered method the maps of real LFW pairs are compared
with the maps of the same pairs under (a) a cascade that re-draws the weights from the top of
the network down (the last quarter of the parameter tensors in forward order, then half, then
three quarters) and (b) full re-initialisation. Similarity is the Spearman rank correlation of
the signed map (``delta``) and of its magnitude, and SSIM of the magnitude; the chance level is
the same similarity between the real maps of *unrelated* pairs. A map passes when, fully
randomised, its similarity to the real map is no higher than chance + ``margin``.

Weights are re-drawn per tensor from a normal distribution with that tensor's own mean and
standard deviation (keeping the scale, so the network stays numerically sane); batch-norm
statistics are kept.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import time
from collections.abc import Callable, Sequence
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
from facexplain.datasets.lfw import read_pairs
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import all_methods, get_method
from facexplain.pipeline import FacePipeline

CASCADE = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class SanityConfig:
    backbone: str = "sface"
    n_pairs: int = 6
    methods: tuple[str, ...] = field(default_factory=lambda: tuple(all_methods()))
    cascade: tuple[float, ...] = CASCADE
    margin: float = 0.2
    patch: int = 16
    stride: int = 8
    ig_steps: int = 32  # fixed: random weights need not converge, and time must stay bounded
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


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation of two maps (flattened)."""
    from scipy.stats import spearmanr

    r = spearmanr(a.flatten().double().numpy(), b.flatten().double().numpy()).statistic
    return 0.0 if not np.isfinite(r) else float(r)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM over the two faces of two (2, H, W) maps, each scaled to [0, 1]."""
    from skimage.metrics import structural_similarity

    def unit(m: torch.Tensor) -> np.ndarray:
        v = m.double().numpy()
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else np.zeros_like(v)

    return float(np.mean([structural_similarity(unit(a[i]), unit(b[i]), data_range=1.0)
                          for i in range(a.shape[0])]))


MEASURES: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "spearman_signed": spearman,
    "spearman_abs": lambda a, b: spearman(a.abs(), b.abs()),
    "ssim_abs": lambda a, b: ssim(a.abs(), b.abs()),
}


def run_sanity(cfg: SanityConfig, pipeline: FacePipeline | None = None) -> dict[str, object]:
    """Similarity of each method's maps to its real maps under each randomisation."""
    started = time.perf_counter()
    s = settings.current()
    pairs = select_heldout_pairs(read_pairs(s.lfw_pairs), cfg.n_pairs, HELDOUT_FOLDS)
    pipe = pipeline or FacePipeline(cfg.backbone, forward_runtime=False)  # edits weights
    faces = [pipe.pair(p.path_a(s.lfw_images), p.path_b(s.lfw_images)).tensor for p in pairs]
    infos = [get_method(m) for m in cfg.methods]
    for info in infos:
        if info.prepare is not None:
            info.prepare(pipe.spec.name, cfg.progress)
    options = ExplainOptions(patch=cfg.patch, stride=cfg.stride, ig_steps=cfg.ig_steps)
    original = {k: v.clone() for k, v in pipe.model.state_dict().items()}
    order = parameters_in_forward_order(pipe.model, faces[0])
    states = [("real", 0.0), *((f"cascade-{round(100 * f)}%", f) for f in cfg.cascade),
              ("full", 1.0)]
    maps: dict[str, dict[str, list[torch.Tensor]]] = {i.name: {} for i in infos}
    bar = tqdm(total=len(states) * len(infos) * len(faces), desc=f"sanity {cfg.backbone}",
               disable=not cfg.progress)
    try:
        for state, fraction in states:
            pipe.model.load_state_dict(original)
            if fraction:
                randomize_top(pipe.model, order, fraction, cfg.seed)
            for info in infos:
                explainer = info.build(pipe.scorer, options)
                key = (info.rankings[0].map if info.rankings
                       else next(m.name for m in info.maps if m.signed))
                maps[info.name][state] = [explainer.explain(f).maps[key].detach().float()
                                          for f in faces]
                bar.update(len(faces))
    finally:
        pipe.model.load_state_dict(original)
        bar.close()
    rows = []
    for name, by_state in maps.items():
        real = by_state["real"]
        chance = {m: float(np.mean([fn(real[i], real[(i + 1) % len(real)])
                                    for i in range(len(real))])) for m, fn in MEASURES.items()}
        row: dict[str, object] = {"method": name, "chance": chance}
        for state, _ in states[1:]:
            row[state] = {m: float(np.mean([fn(real[i], by_state[state][i])
                                            for i in range(len(real))]))
                          for m, fn in MEASURES.items()}
        full = row["full"]
        assert isinstance(full, dict)
        row["pass"] = {m: bool(full[m] <= chance[m] + cfg.margin) for m in MEASURES}
        rows.append(row)
    return {
        "backbone": cfg.backbone, "n_pairs": len(pairs), "methods": list(cfg.methods),
        "weights": pipe.scorer.fingerprint(),
        "states": [st for st, _ in states], "cascade_fractions": list(cfg.cascade),
        "n_parameter_tensors": len(order), "margin": cfg.margin,
        "options": {"patch": cfg.patch, "stride": cfg.stride, "ig_steps": cfg.ig_steps},
        "pairs": [f"{p.name_a}_{p.index_a:04d}|{p.name_b}_{p.index_b:04d}" for p in pairs],
        "rows": rows, "seconds": round(time.perf_counter() - started, 1),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }


def format_sanity_table(result: dict[str, object]) -> str:
    """One line per method: Spearman (signed, |.|) and SSIM per state, chance, pass/fail."""
    states = [s for s in result["states"] if s != "real"]  # type: ignore[attr-defined]
    head = f"{'method':<20}{'measure':<17}" + "".join(f"{s:>14}" for s in states)
    lines = [head + f"{'chance':>9}  verdict", "-" * (len(head) + 18)]
    for row in result["rows"]:  # type: ignore[attr-defined]
        for m in MEASURES:
            cells = "".join(f"{row[s][m]:>14.3f}" for s in states)
            verdict = "pass" if row["pass"][m] else "FAIL"
            lines.append(f"{row['method']:<20}{m:<17}{cells}{row['chance'][m]:>9.3f}  {verdict}")
    return "\n".join(lines)


def plot_sanity(result: dict[str, object], path: Path) -> Path:
    """Similarity to the real map along the cascade, one panel per measure; dotted: chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    states = [s for s in result["states"] if s != "real"]  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = result["rows"]  # type: ignore[assignment]
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(13, 3.8), dpi=110, sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, measure in zip(axes, MEASURES, strict=True):
        for j, row in enumerate(rows):
            color = colors[j % len(colors)]
            ax.plot(range(len(states)), [row[s][measure] for s in states], "o-", color=color,
                    label=row["method"])
            ax.axhline(row["chance"][measure], color=color, ls=":", lw=0.8)
        ax.set_xticks(range(len(states)), states, fontsize=7)
        ax.set_title(measure, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("similarity to the real map")
    axes[-1].legend(fontsize=6)
    fig.suptitle(f"{result['backbone']}: model randomisation (cascade from the top, then full); "
                 f"dotted = chance (unrelated pairs), n={result['n_pairs']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

