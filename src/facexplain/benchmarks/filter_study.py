"""`facexplain analyze filters`: the part-filter figures of the paper on held-out LFW photos.

Why: a trained head is only interpretable if its filters stay on their parts for people it has
not seen. This runner takes the heads trained for one fold (``heads.parts.checkpoint_path``),
the LFW photos held out from that fold, and writes Fig. 5 (average peak locations), Fig. 9
(histograms of per-filter peak std), Fig. 6 (sorted feature change under each occlusion), Fig. 7
(each filter at its average peak, coloured by how much an occlusion at six places moves it: eyes,
nose and mouth against the paper's "less critical" forehead and cheek), Fig. 8 (response maps of
10 filters on 5 people and on 5 photos of one person) and ``filters.json`` with the numbers
(Fig. 7's largest change and the rank correlation of change with distance), the command and the
date. The occlusions are warped through the five-point mesh, whatever mesh the heads trained on.

Held-out photos: for fold 'half1' every photo of the identities in the pairs of LFW folds 1-5
(``read_pairs``' ``fold`` 0-4), for 'half2' folds 6-10, for 'all' any LFW photo.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain.analysis.filter_plots import (
    face_image,
    plot_occlusion_locations,
    plot_occlusion_sensitivity,
    plot_peak_locations,
    plot_response_maps,
    plot_std_histograms,
)
from facexplain.analysis.filters import occluded_faces, occlusion_locality, part_rectangles
from facexplain.errors import AssetMissing, InvalidArgument
from facexplain.heads.parts import VARIANTS, PartsHead, checkpoint_path, head_inputs, load_head
from facexplain.heads.parts_readout import (
    PeakStats,
    part_names,
    peak_locations,
    peak_statistics,
    smoothed_responses,
)

FIG8_FILTERS, FIG8_FACES = 10, 5


@dataclass(frozen=True)
class FilterStudyConfig:
    backbone: str = "sface"
    variants: tuple[str, ...] = ("base", "sad+fad")
    fold: str = "half1"
    n_images: int = 1000
    lfw_images: Path = Path("lfw-deepfunneled")
    lfw_pairs: Path = Path("pairs.txt")
    cache_dir: Path = Path("cache")
    occlusions: tuple[str, ...] = ("left eye", "right eye", "nose", "mouth", "forehead",
                                   "left cheek")
    heads_suffix: str = ""  # heads of another N_f or mesh (``PartsTrainConfig.checkpoint_suffix``)
    batch: int = 32
    seed: int = 0
    progress: bool = True
    home: Path | None = None
    command: str = ""


def heldout_images(images: Path, pairs: Path, fold: str) -> list[Path]:
    """LFW photos not seen by heads of ``fold`` (module doc), sorted."""
    from facexplain.datasets.lfw import read_pairs
    from facexplain.train.parts import HALVES
    from facexplain.train.xcos_data import lfw_images

    if fold not in HALVES:
        raise InvalidArgument(f"unknown fold '{fold}'; valid: {', '.join(HALVES)}")
    paths = lfw_images(images)
    if fold == "all":
        return paths
    keep = {n for p in read_pairs(pairs) if p.fold in HALVES[fold]
            for n in (p.name_a, p.name_b)}
    return [p for p in paths if p.parent.name in keep]


def _heads(cfg: FilterStudyConfig) -> dict[str, tuple[PartsHead, Path]]:
    out = {}
    for v in cfg.variants:
        if v not in VARIANTS:
            raise InvalidArgument(f"unknown head variant '{v}'; valid: {', '.join(VARIANTS)}")
        path = checkpoint_path(cfg.backbone, v, cfg.fold + cfg.heads_suffix, cfg.home)
        if not path.is_file():
            raise AssetMissing(f"no '{v}' part-filter head for fold {cfg.fold} at {path}; train "
                               f"it with `facexplain train parts --backbone {cfg.backbone}`")
        head, _ = load_head(path)
        if head.config.backbone != cfg.backbone:
            raise InvalidArgument(f"{path} was trained on '{head.config.backbone}'")
        out[v] = (head, path)
    return out


def _fig8_faces(pool: list[Path], sample: list[Path], rng: np.random.Generator) -> list[Path]:
    """5 photos of 5 people from the sample, then 5 photos of the pool's most photographed."""
    firsts: dict[str, Path] = {}
    for p in sample:
        firsts.setdefault(p.parent.name, p)
    names = sorted(firsts)
    chosen = [firsts[n] for n in rng.choice(names, min(FIG8_FACES, len(names)), replace=False)]
    by_name: dict[str, list[Path]] = {}
    for p in pool:
        by_name.setdefault(p.parent.name, []).append(p)
    person = max(sorted(by_name), key=lambda n: len(by_name[n]))
    return chosen + by_name[person][:FIG8_FACES]


def _spread_filters(stats: PeakStats, k: int) -> list[int]:
    """``k`` well-localised filters far apart: farthest-point picks among the lower-std half."""
    order = np.argsort(stats.std, kind="stable")
    cand = order[: max(k, len(order) // 2)]
    picked = [int(cand[0])]
    while len(picked) < min(k, len(cand)):
        d = np.min(np.linalg.norm(stats.mean[cand][:, None] - stats.mean[picked][None], axis=2),
                   axis=1)
        picked.append(int(cand[int(d.argmax())]))
    return picked


@torch.no_grad()
def run_filter_study(cfg: FilterStudyConfig, out: Path) -> dict[str, object]:
    """Run the study, write the figures and ``filters.json`` under ``out``; return the JSON."""
    from facexplain.cache import DiskCache
    from facexplain.datasets.faces import locate_all
    from facexplain.datasets.warped_occlusion import RectangleWarper
    from facexplain.pipeline import FacePipeline
    from facexplain.train.features import aligned_batch
    from facexplain.train.parts_features import aligned_landmarks

    if cfg.n_images < 1 or cfg.batch < 1:
        raise InvalidArgument("--images and the batch size must be positive")
    heads = _heads(cfg)  # fail on a missing head before any photo is read
    pool = heldout_images(cfg.lfw_images, cfg.lfw_pairs, cfg.fold)
    rng = np.random.default_rng(cfg.seed)
    idx = np.sort(rng.choice(len(pool), min(cfg.n_images, len(pool)), replace=False))
    sample = [pool[i] for i in idx]
    extra = _fig8_faces(pool, sample, rng)
    pipe = FacePipeline(cfg.backbone, root=cfg.home)
    spec = pipe.spec
    size, template = spec.input_size, spec.alignment
    rects = part_rectangles(template.as_array(), size)
    unknown = set(cfg.occlusions) - set(rects)
    if unknown:
        raise InvalidArgument(f"unknown occlusion part(s) {sorted(unknown)}; valid: "
                              f"{', '.join(rects)}")
    warper = RectangleWarper(template.as_array(), size)
    located = locate_all(pipe, list(dict.fromkeys(sample + extra)), DiskCache(cfg.cache_dir),
                         cfg.progress)
    pos: dict[str, list[np.ndarray]] = {v: [] for v in heads}
    neg: dict[str, list[np.ndarray]] = {v: [] for v in heads}
    feats: dict[str, list[torch.Tensor]] = {v: [] for v in heads}
    diffs = {part: {v: torch.zeros(h.config.n_filters, dtype=torch.float64)
                    for v, (h, _) in heads.items()} for part in cfg.occlusions}
    face_sum = torch.zeros(3, size, size, dtype=torch.float64)

    def run_heads(faces: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        cache: dict[tuple[object, ...], tuple[torch.Tensor, ...]] = {}
        res = {}
        for v, (head, _) in heads.items():
            key = (head.config.nodes, head.config.grid)
            if key not in cache:
                cache[key] = head_inputs(pipe.model, faces, head.config.nodes, head.config.grid)
            early, middle, late, _ = cache[key]
            psi = head.responses(early, middle, late)
            res[v] = (smoothed_responses(head, psi), head.embed(psi))
        return res

    starts = range(0, len(sample), cfg.batch)
    for start in tqdm(starts, desc=f"filters {cfg.backbone}", unit="batch",
                      disable=not cfg.progress):
        chunk = sample[start:start + cfg.batch]
        faces = aligned_batch(chunk, located, spec)
        marks = np.stack([aligned_landmarks(located[p], spec) for p in chunk])
        face_sum += faces.double().sum(dim=0)
        clean = run_heads(faces)
        for v, (smooth, f) in clean.items():
            top, bottom = peak_locations(smooth)
            pos[v].append(top)
            neg[v].append(bottom)
            feats[v].append(f)
        for part in cfg.occlusions:
            hidden = run_heads(occluded_faces(faces, marks, warper, rects[part]))
            for v, (_, f_occ) in hidden.items():
                diffs[part][v] += (clean[v][1] - f_occ).abs().double().sum(dim=0)
    n = len(sample)
    mean_face = face_image(face_sum / n)
    stats = {v: (peak_statistics(np.concatenate(pos[v]), heads[v][0].config.grid),
                 peak_statistics(np.concatenate(neg[v]), heads[v][0].config.grid))
             for v in heads}
    mean_diff = {part: {v: (d / n).numpy() for v, d in per.items()} for part, per in diffs.items()}
    out.mkdir(parents=True, exist_ok=True)
    plot_peak_locations(stats, mean_face, size, out / "fig5_peak_locations.png")
    plot_std_histograms(stats, out / "fig9_peak_std.png")
    plot_occlusion_sensitivity(mean_diff, out / "fig6_occlusion.png")
    plot_occlusion_locations(mean_diff, {v: st[0] for v, st in stats.items()},
                             {p: rects[p] for p in cfg.occlusions}, mean_face, size,
                             out / "fig7_occlusion_locations.png")
    shown = "sad+fad" if "sad+fad" in heads else next(iter(heads))
    head = heads[shown][0]
    fig8 = aligned_batch(extra, located, spec)
    smooth, _ = run_heads(fig8)[shown]
    filters = _spread_filters(stats[shown][0], FIG8_FILTERS)
    labels = [p.stem for p in extra]
    plot_response_maps(fig8, smooth, filters, labels, out / "fig8_responses.png",
                       split=len(extra) - FIG8_FACES,
                       title=f"{shown}: responses of {len(filters)} filters (red +, blue -)")
    doc = _document(cfg, heads, stats, mean_diff, feats, n, template.as_array(), size, rects)
    doc["fig8"] = {"variant": shown, "filters": filters, "faces": [str(p) for p in extra],
                   "grid": head.config.grid}
    (out / "filters.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _document(cfg: FilterStudyConfig, heads: dict[str, tuple[PartsHead, Path]],
              stats: dict[str, tuple[PeakStats, PeakStats]],
              diffs: dict[str, dict[str, np.ndarray]], feats: dict[str, list[torch.Tensor]],
              n: int, template: np.ndarray, size: int,
              rects: dict[str, np.ndarray]) -> dict[str, object]:
    from facexplain.heads.parts_readout import cell_to_pixel

    variants: dict[str, object] = {}
    for v, (head, path) in heads.items():
        sp, sn = stats[v]
        peaks_px = cell_to_pixel(sp.mean, sp.grid, size)
        f_mag = float(torch.cat(feats[v]).abs().mean())
        variants[v] = {
            "checkpoint": str(path),
            "positive": sp.to_json(), "negative": sn.to_json(),
            "parts": part_names(sp.mean, template, head.config.grid, size),
            "occlusion": {part: {"mean_abs_change": float(d[v].mean()),
                                 "relative_to_mean_abs_f": float(d[v].mean()) / max(f_mag, 1e-12),
                                 "sorted": np.sort(d[v])[::-1].round(6).tolist(),
                                 **occlusion_locality(d[v], peaks_px, rects[part])}
                          for part, d in diffs.items()},
        }
    return {"command": cfg.command, "date": dt.datetime.now().isoformat(timespec="seconds"),
            "backbone": cfg.backbone, "fold": cfg.fold, "n_images": n, "seed": cfg.seed,
            "peaks": "argmax / argmin of g_1 * LMF(psi) per image, unweighted means, cells",
            "variants": variants}
