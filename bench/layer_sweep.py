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

from facexplain.benchmarks.layer_sweep import LayerSweepConfig, run_layer_sweep


def draw(docs: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), dpi=110)
    panels = [("sparsity_per_image", "share of units > 0 per image", 0.5, "half on"),
              ("selectivity", "best single unit, identity\n(held-out balanced accuracy)", 0.5,
               "chance"),
              ("flipped_relative_to_impostor",
               f"bits flipped by occlusion of {docs[0]['area']:.0%} of the face\n"
               "relative to two people's distance", 1.0, "as far as another person")]
    for ax, (key, label, ref, ref_label) in zip(axes, panels, strict=True):
        for doc in docs:
            rows = doc["rows"]
            x = [r["depth"] / (len(rows) - 1) for r in rows]
            if isinstance(rows[0][key], dict):
                y = [r[key]["mean"] for r in rows]
                lo = [r[key]["ci"][0] for r in rows]
                hi = [r[key]["ci"][1] for r in rows]
                ax.fill_between(x, lo, hi, alpha=0.2)
            else:
                y = [r[key] for r in rows]
            ax.plot(x, y, "o-", label=doc["backbone"])
            for xi, yi, r in zip(x, y, rows, strict=True):
                if r["layer"] == "embedding":
                    ax.annotate("top", (xi, yi), textcoords="offset points", xytext=(-18, 6),
                                fontsize=7)
        ax.axhline(ref, color="grey", ls="--", lw=0.8, label=ref_label)
        ax.set_xlabel("depth (first stage 0, embedding 1)")
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("DeepID2+'s properties layer by layer on LFW (identities with >= "
                 f"{docs[0]['min_images']} photos; 95% bootstrap CIs)", fontsize=9)
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
    args = parser.parse_args()
    if args.figure_from:
        docs = [json.loads(p.read_text()) for p in args.figure_from]
        print(draw(docs, args.figure or Path("docs/figures/layer-sweep.png")))
        return
    doc = run_layer_sweep(LayerSweepConfig(args.backbone, args.min_images, args.area))
    doc["command"] = "bench/layer_sweep.py " + " ".join(sys.argv[1:])
    for r in doc["rows"]:
        print(f"{r['layer']:>14} units {r['n_units']:>7}  on/image "
              f"{r['sparsity_per_image']['mean']:.3f}  select {r['selectivity']['mean']:.3f}  "
              f"flip {r['flipped']['mean']:.3f}  impostor {r['impostor_distance']:.3f}  "
              f"rel {r['flipped_relative_to_impostor']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1))
    if args.figure:
        print(draw([doc], args.figure))


if __name__ == "__main__":
    main()
