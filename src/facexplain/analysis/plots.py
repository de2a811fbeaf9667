"""Pictures of the neuron study (matplotlib, headless), one function per figure of the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facexplain.analysis.neurons import Sparsity
from facexplain.analysis.robustness import RobustnessCurve

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _plt() -> Any:  # matplotlib.pyplot, imported late (headless backend first)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


def _number(value: object) -> float:
    """A JSON number of the study, or NaN where it is missing."""
    return float(value) if isinstance(value, int | float | np.number) else float("nan")


def plot_sparsity(layers: Sequence[tuple[str, Sparsity]], path: Path) -> Path:
    """The paper's Fig. 1 histograms: share of neurons active per image, of images per neuron."""
    plt = _plt()
    fig, axes = plt.subplots(len(layers), 2, figsize=(9, 3.2 * len(layers)), dpi=110,
                             squeeze=False)
    bins = np.linspace(0, 1, 41)
    for row, (name, s) in enumerate(layers):
        ax = axes[row, 0]
        ax.hist(s.per_image, bins=bins, color="#3b6ea5")
        ax.axvline(float(s.per_image.mean()), color="k", ls="--", lw=1)
        ax.set_title(f"{name}\nactivated neurons per image (mean {s.per_image.mean():.2f})",
                     fontsize=9)
        ax.set_xlabel("fraction of the layer's neurons > 0")
        ax.set_ylabel("images")
        ax = axes[row, 1]
        ax.hist(s.per_neuron, bins=bins, color="#c0504d")
        ax.axvline(float(s.per_neuron.mean()), color="k", ls="--", lw=1)
        ax.set_title(f"{name}\nimages activating each neuron (mean {s.per_neuron.mean():.2f})",
                     fontsize=9)
        ax.set_xlabel("fraction of images where the neuron > 0")
        ax.set_ylabel("neurons")
    return _save(fig, path)


def plot_selective_neurons(
    emb: np.ndarray, neurons: Sequence[tuple[int, str]], identity_mask: np.ndarray,
    identity: str, female: np.ndarray, path: Path,
) -> Path:
    """Activation histograms of a few selective neurons (paper Fig. 1, right): over all images
    (grey background), over one identity, over male and over female images."""
    plt = _plt()
    fig, axes = plt.subplots(len(neurons), 3, figsize=(10, 2.2 * len(neurons)), dpi=110,
                             squeeze=False)
    groups = ((identity_mask, identity, "#3b6ea5"), (~female, "male", "#4f8a3c"),
              (female, "female", "#c0504d"))
    for row, (neuron, label) in enumerate(neurons):
        x = emb[:, neuron]
        bins = np.linspace(float(x.min()), float(x.max()), 41)
        for col, (mask, name, color) in enumerate(groups):
            ax = axes[row, col]
            ax.hist(x, bins=bins, color="0.8", density=True, label="all images")
            ax.hist(x[mask], bins=bins, color=color, alpha=0.75, density=True, label=name)
            ax.axvline(0, color="k", lw=0.8)
            on = float((x[mask] > 0).mean())
            ax.set_title(f"neuron {neuron} ({label})\n{name}: active on {on:.0%}", fontsize=8)
            ax.set_yticks([])
            if row == 0:
                ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_selectivity(rows: Sequence[dict[str, object]], path: Path) -> Path:
    """Held-out balanced accuracy: best single neuron vs linear classifiers, per task."""
    plt = _plt()
    names = [str(r["name"]) for r in rows]
    keys = (("single_neuron", "best single neuron", "#3b6ea5"),
            ("all_neurons_linear", "linear, all neurons", "#9bbbd9"),
            ("lbp_linear", "linear, high-dim LBP", "#c0504d"))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 3.8), dpi=110)
    width = 0.27
    pos = np.arange(len(names))
    for j, (key, label, color) in enumerate(keys):
        vals = [_number(r.get(key)) for r in rows]
        ax.bar(pos + (j - 1) * width, vals, width, label=label, color=color)
    ax.set_xticks(pos)
    ax.set_xticklabels([n.replace("_", " ") for n in names], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("balanced accuracy (held out)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_binary(genuine: np.ndarray, impostor: np.ndarray, n_bits: int,
                accuracies: dict[str, float], path: Path) -> Path:
    """Hamming distances of genuine vs impostor LFW pairs, and accuracy real vs binary."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110,
                                 gridspec_kw={"width_ratios": [2, 1]})
    bins = np.arange(0, n_bits + 2) - 0.5 if n_bits <= 256 else 60
    a1.hist(genuine, bins=bins, alpha=0.6, color="#4f8a3c", label="same person")
    a1.hist(impostor, bins=bins, alpha=0.6, color="#c0504d", label="different people")
    a1.set_xlabel(f"Hamming distance between sign codes ({n_bits} bits)")
    a1.set_ylabel("LFW pairs")
    a1.legend(fontsize=8)
    names = list(accuracies)
    vals = [accuracies[n] for n in names]
    a2.bar(range(len(names)), vals, color=["#3b6ea5", "#9bbbd9", "#c0504d"][: len(names)])
    for i, v in enumerate(vals):
        a2.text(i, v + 0.002, f"{v:.4f}", ha="center", fontsize=8)
    a2.set_xticks(range(len(names)))
    a2.set_xticklabels(names, fontsize=8)
    a2.set_ylim(max(0.5, min(vals) - 0.05), 1.0)
    a2.set_ylabel("LFW 10-fold accuracy")
    return _save(fig, path)


def plot_robustness(curve: RobustnessCurve, node: str, path: Path) -> Path:
    """Flipped bits (raw, and as a share of the bits two different people differ by) and
    verification accuracy against the occluded share of the face."""
    plt = _plt()
    points = curve.points
    area = [p.area for p in points]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 3.9), dpi=110)
    styles = {"top": ("top layer (embedding)", "#3b6ea5"), "node": (f"node {node}", "#4f8a3c"),
              "lbp": ("high-dim LBP", "#c0504d")}
    for key, (label, color) in styles.items():
        flips = np.asarray([p.flipped[key] for p in points])
        a1.plot(area, flips, "o-", color=color, label=label)
        a1.axhline(curve.genuine_distance[key], color=color, ls=":", lw=1)
        a2.plot(area, flips / max(curve.impostor_distance[key], 1e-12), "o-", color=color,
                label=label)
    a1.set_xlabel("occluded share of the face")
    a1.set_ylabel("fraction of bits flipped vs clean")
    a1.set_title("dotted: bit distance of same-person pairs", fontsize=8)
    a2.set_xlabel("occluded share of the face")
    a2.set_ylabel("flipped / bit distance of different people")
    for ax in (a1, a2):
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    acc_styles = {"top_cosine": ("top layer, cosine", "#3b6ea5", "-"),
                  "top_hamming": ("top layer, Hamming", "#3b6ea5", "--"),
                  "node_hamming": (f"{node}, Hamming", "#4f8a3c", "--"),
                  "lbp_cosine": ("high-dim LBP, cosine", "#c0504d", "-")}
    for key, (label, color, ls) in acc_styles.items():
        a3.plot(area, [p.accuracy[key] for p in points], marker="o", ls=ls, color=color,
                label=label)
    a3.set_xlabel("occluded share of face B (face A clean)")
    a3.set_ylabel("LFW k-fold accuracy")
    a3.legend(fontsize=8)
    a3.grid(alpha=0.3)
    return _save(fig, path)
