"""xCos training settings compared on development folds only (default: LFW folds 1 and 2).

Why: the xCos bars (accuracy within 0.5 points of the teacher) are judged on held-out folds,
so training settings may only be chosen on folds that the reported figure leaves out. For each
setting and each development fold k this trains a head without fold k's identities (as
``train xcos --fold k``) and scores fold k's 600 pairs; the table gives, per setting, the mean
over the development folds of the best-threshold accuracy of the teacher cosine and of
xCos-U/P/L (the same optimistic threshold for every score, so gaps are comparable), the ROC AUC
and Pearson r with the teacher. The reported 10-fold result then comes from
``facexplain benchmark xcos``, with the mean over the untouched folds beside it.

Usage: .venv/bin/python bench/xcos_dev.py --setting base: --setting hard:hard_fraction=0.5
       [--setting long:epochs=36,hard_fraction=0.5] [--folds 1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from facexplain.backbones.registry import get_spec
from facexplain.benchmarks.xcos import cell_masks
from facexplain.datasets.lfw import read_pairs
from facexplain.heads.xcos import ATTENTION_KINDS, XCosHead
from facexplain.scoring import best_threshold
from facexplain.train.xcos import head_config_for, train_head
from facexplain.train.xcos_data import XCosTrainConfig, load_lfw_features, training_subset


def parse_setting(text: str) -> tuple[str, dict[str, object]]:
    """``name:key=value,key=value`` -> (name, overrides typed like the config's defaults)."""
    name, _, rest = text.partition(":")
    defaults = XCosTrainConfig()
    overrides: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        default = getattr(defaults, key)
        if isinstance(default, bool):
            overrides[key] = value.lower() in ("1", "true", "yes")
        else:
            overrides[key] = type(default)(value)
    return name, overrides


def attention_shares(head: XCosHead, fa: torch.Tensor, fb: torch.Tensor,
                     masks: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """Where L's W goes on the fold's pairs (face cells, border ring, the four corners, each as
    a share of W and against its share of the area), and how much of it position alone
    explains: W of the fold's *mean* features in both faces (no face's content), correlated
    over cells with the mean W of the real pairs."""
    face, border = masks
    corners = np.zeros_like(face)
    corners[0, 0] = corners[0, -1] = corners[-1, 0] = corners[-1, -1] = True
    w = head.weights(fa, fb, "L").double().numpy()
    mean = torch.cat([fa, fb]).mean(dim=0, keepdim=True)
    content_free = head.weights(mean, mean, "L")[0].double().numpy()
    mean_w = w.mean(axis=0)
    return {"w_face": float(w[:, face].sum(1).mean()), "area_face": float(face.mean()),
            "w_border": float(w[:, border].sum(1).mean()), "area_border": float(border.mean()),
            "w_corners": float(w[:, corners].sum(1).mean()), "area_corners": float(corners.mean()),
            "w_max_cell": float(mean_w.max()),
            "r_position_only": float(np.corrcoef(mean_w.ravel(), content_free.ravel())[0, 1])}


def best_accuracy(scores: np.ndarray, same: np.ndarray) -> float:
    th = best_threshold(scores, same)
    return float(((scores >= th) == same.astype(bool)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", action="append", required=True)
    parser.add_argument("--folds", default="1,2")
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--node", default=None, help="spatial map (default: the last one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folds = [int(f) for f in args.folds.split(",")]
    base = XCosTrainConfig(backbone=args.backbone, node=args.node)
    feats = load_lfw_features(base)
    pairs = read_pairs(base.pairs)
    index = {p: i for i, p in enumerate(feats.paths)}
    spec = get_spec(args.backbone)
    masks = cell_masks(spec.alignment.as_array(), spec.input_size, *feats.data.maps.shape[2:])
    results: dict[str, dict[str, float]] = {}
    for text in args.setting:
        name, overrides = parse_setting(text)
        cfg = dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
        head_cfg = head_config_for(cfg, feats.data.maps, feats.node)
        rows: list[dict[str, float]] = []
        for fold in folds:
            head = train_head(feats.data, training_subset(feats.paths, pairs, fold), cfg,
                              head_cfg, desc=f"{name} fold{fold}").head
            test = [p for p in pairs if p.fold == fold - 1]
            ia = torch.tensor([index[p.path_a(base.images)] for p in test])
            ib = torch.tensor([index[p.path_b(base.images)] for p in test])
            same = np.asarray([p.same for p in test])
            teacher = (feats.data.teacher[ia] * feats.data.teacher[ib]).sum(1).numpy()
            row = {"teacher": best_accuracy(teacher, same),
                   "auc_teacher": float(roc_auc_score(same, teacher))}
            with torch.no_grad():
                fa = head.features(feats.data.maps[ia].float())
                fb = head.features(feats.data.maps[ib].float())
                for kind in ATTENTION_KINDS:
                    s = head.compare(fa, fb, kind).score.double().numpy()
                    row[kind] = best_accuracy(s, same)
                    row[f"auc_{kind}"] = float(roc_auc_score(same, s))
                    row[f"r_{kind}"] = float(np.corrcoef(s, teacher)[0, 1])
                row.update(attention_shares(head, fa, fb, masks))
            rows.append(row)
            print(name, fold, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
        results[name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        results[name]["overrides"] = overrides  # type: ignore[assignment]
    print("\n| setting | teacher | U | P | L | AUC L | r L | W face cells | W border | W corners "
          "| r with position-only W |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['teacher']:.4f} | {r['U']:.4f} | {r['P']:.4f} | {r['L']:.4f} | "
              f"{r['auc_L']:.5f} | {r['r_L']:.4f} | {r['w_face']:.3f} ({r['area_face']:.3f}) | "
              f"{r['w_border']:.3f} ({r['area_border']:.3f}) | {r['w_corners']:.3f} "
              f"({r['area_corners']:.3f}) | {r['r_position_only']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"folds": folds, "results": results}, indent=1))


if __name__ == "__main__":
    main()
