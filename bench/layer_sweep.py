"""Paper 002 (DeepID2+) per layer: sparsity, selectivity and occlusion robustness of every stage
of a backbone, in one figure (``benchmarks.layer_sweep`` says the protocol).

Usage: .venv/bin/python bench/layer_sweep.py --backbone sface [--min-images 20] [--area 0.4]
       [--json docs/results/layer-sweep-sface.json] [--figure docs/figures/layer-sweep.png]
With several --json files given to --figure-from, draws them together (one line per backbone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facexplain.benchmarks.layer_sweep import LayerSweepConfig, run_layer_sweep


def _line(ax, doc: dict[str, Any], key: str, **style: Any) -> None:  # type: ignore[no-untyped-def]
    rows = doc["rows"]
    x = [r["depth"] / (len(rows) - 1) for r in rows]
    if isinstance(rows[0][key], dict):
        y = [r[key]["mean"] for r in rows]
        ax.fill_between(x, [r[key]["ci"][0] for r in rows], [r[key]["ci"][1] for r in rows],
                        alpha=0.2, color=style.get("color"))
    else:
        y = [r[key] for r in rows]
    ax.plot(x, y, "o-", ms=3, **style)


def draw(docs: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), dpi=110)
    colours = ["#3b6ea5", "#c0504d", "#4f8a3c", "#8064a2"]
    area = f"{docs[0]['area']:.0%}"
    for doc, colour in zip(docs, colours, strict=False):
        name = doc["backbone"]
        _line(axes[0], doc, "sparsity_per_image", color=colour, label=name)
        _line(axes[1], doc, "selectivity", color=colour, label=name)
        _line(axes[2], doc, "verification_auc_clean", color=colour, label=f"{name}, clean")
        _line(axes[2], doc, "verification_auc_occluded", color=colour, ls="--",
              label=f"{name}, face B {area} occluded")
        _line(axes[3], doc, "flipped_relative_to_impostor", color=colour, label=name)
    titles = [("share of units > 0 per image", 0.5, "half on"),
              ("best single unit for an identity\n(held-out balanced accuracy)", 0.5, "chance"),
              ("verification from the layer's bits (AUC)", 0.5, "chance"),
              (f"bits flipped by occluding {area} of the face,\nrelative to two people's "
               "distance", 1.0, "as far as another person")]
    for ax, (title, ref, ref_label) in zip(axes, titles, strict=True):
        ax.axhline(ref, color="grey", ls=":", lw=0.8, label=ref_label)
        ax.set_xlabel("depth (first stage 0 ... embedding 1)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("DeepID2+'s properties layer by layer on LFW (identities with >= "
                 f"{docs[0]['min_images']} photos; bands: 95% bootstrap CIs)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_fig1(doc: dict[str, Any], layers: list[str], path: Path) -> Path:
    """The paper's Fig. 1 (left) for the named layers: how many units are on per image, and on
    how many images each unit is on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["layer"]: r for r in doc["rows"]}
    edges = np.linspace(0.0, 1.0, 41)
    fig, axes = plt.subplots(len(layers), 2, figsize=(9, 3.0 * len(layers)), dpi=110,
                             squeeze=False)
    for i, name in enumerate(layers):
        r = rows[name]
        for j, (key, mean, colour, xlabel, ylabel) in enumerate([
                ("histogram_per_image", r["sparsity_per_image"]["mean"], "#3b6ea5",
                 "share of the layer's units > 0", "images"),
                ("histogram_per_unit", r["sparsity_per_unit"], "#c0504d",
                 "share of images on which the unit > 0", "units")]):
            ax = axes[i, j]
            ax.stairs(r[key], edges, fill=True, color=colour)
            ax.axvline(mean, color="k", ls="--", lw=1)
            ax.set_title(f"{doc['backbone']} {name} ({r['n_units']:,} units): mean {mean:.2f}",
                         fontsize=9)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
    fig.suptitle(f"DeepID2+ Fig. 1 on LFW: {doc['n_images']:,} photos of {doc['n_identities']} "
                 "identities", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--min-images", type=int, default=20)
    parser.add_argument("--area", type=float, default=0.4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--figure-from", type=Path, nargs="*", default=[])
    parser.add_argument("--fig1", type=Path, help="the paper's Fig. 1 for the top layer and "
                        "the last stage before it")
    args = parser.parse_args()
    if args.figure_from:
        docs = [json.loads(p.read_text()) for p in args.figure_from]
        print(draw(docs, args.figure or Path("docs/figures/layer-sweep.png")))
        if args.fig1:
            print(draw_fig1(docs[0], [r["layer"] for r in docs[0]["rows"]][-2:], args.fig1))
        return
    doc = run_layer_sweep(LayerSweepConfig(args.backbone, args.min_images, args.area))
    doc["command"] = "bench/layer_sweep.py " + " ".join(sys.argv[1:])
    for r in doc["rows"]:
        print(f"{r['layer']:>14} units {r['n_units']:>7}  on/image "
              f"{r['sparsity_per_image']['mean']:.3f}  select {r['selectivity']['mean']:.3f}  "
              f"flip {r['flipped']['mean']:.3f}  impostor {r['impostor_distance']:.3f}  "
              f"rel {r['flipped_relative_to_impostor']:.3f}  auc {r['verification_auc_clean']:.3f} "
              f"-> {r['verification_auc_occluded']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1))
    if args.figure:
        print(draw([doc], args.figure))
    if args.fig1:
        names = [r["layer"] for r in doc["rows"]]
        print(draw_fig1(doc, names[-2:], args.fig1))


if __name__ == "__main__":
    main()
