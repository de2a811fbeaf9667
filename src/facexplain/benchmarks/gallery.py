"""1:N identification on LFW: held-out probes against a gallery of all other LFW photos.

Probes are photos of people with several photos, drawn so that every probe's person keeps at
least one photo in the gallery; rank-1 = the first identity of `facexplain search` is the
probe's. Embeddings come from the shared caches (LFW's face-nearest-the-centre rule).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facexplain import settings
from facexplain.benchmarks.codes import lfw_embeddings
from facexplain.benchmarks.registry import measured_on
from facexplain.datasets.lfw_people import LfwPeople
from facexplain.scoring import get_calibration
from facexplain.search.codes import parse_recipe
from facexplain.search.gallery import GallerySearch, gallery_from_embeddings


@dataclass(frozen=True)
class GalleryBenchmarkConfig:
    backbone: str = "sface"
    probes: int = 500
    code: str = "rotation-256"
    short_list: int = 1000
    top: int = 5
    seed: int = 0
    gallery_out: Path | None = None  # also store the gallery for `facexplain search`
    lfw_root: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    progress: bool = True


def held_out_probes(people: LfwPeople, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` photos of people with >= 2 photos, each person keeping >= 1 in the gallery."""
    names, counts = np.unique(people.identity, return_counts=True)
    left = dict(zip(names.tolist(), counts.tolist(), strict=True))
    chosen: list[int] = []
    for i in rng.permutation(len(people.paths)):
        name = str(people.identity[i])
        if left[name] >= 2:
            chosen.append(int(i))
            left[name] -= 1
            if len(chosen) == n:
                break
    return np.sort(np.asarray(chosen, dtype=np.int64))


def run_gallery_benchmark(cfg: GalleryBenchmarkConfig) -> dict[str, object]:
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    emb = lfw_embeddings(cfg.backbone, cfg.lfw_root, cfg.cache_dir, cfg.progress)
    people = emb.people
    probes = held_out_probes(people, cfg.probes, rng)
    keep = np.ones(len(people.paths), dtype=bool)
    keep[probes] = False
    rows = np.flatnonzero(keep)
    gallery = gallery_from_embeddings(
        cfg.backbone, (str(people.paths[i].resolve()) for i in rows),
        (str(people.identity[i]) for i in rows), emb.matrix[rows], parse_recipe(cfg.code))
    if cfg.gallery_out is not None:
        gallery.save(cfg.gallery_out)
    cal = get_calibration(cfg.backbone)
    fast = GallerySearch(gallery, cal, short_list=cfg.short_list)
    exact = GallerySearch(gallery, cal, short_list=len(gallery))
    rank1 = rank_k = rank1_exact = same_top = 0
    first_wrong: list[dict[str, object]] = []
    search_s = 0.0
    for i in tqdm(probes, desc="probes", unit="probe", disable=not cfg.progress):
        truth = str(people.identity[i])
        t = time.perf_counter()
        got = fast.identities(emb.matrix[i], cfg.top)
        search_s += time.perf_counter() - t
        rank1 += got[0].identity == truth
        rank_k += truth in {c.identity for c in got}
        same_top += got[0].same
        rank1_exact += exact.identities(emb.matrix[i], 1)[0].identity == truth
        if got[0].identity != truth and len(first_wrong) < 10:
            first_wrong.append({"probe": str(people.paths[i]), "truth": truth,
                                "top": got[0].to_dict()})
    n = len(probes)
    return {
        "backbone": cfg.backbone, "n_probes": n, "n_gallery": len(gallery),
        "n_identities": len(set(gallery.identities)),
        "code": f"{gallery.encoder.method}-{gallery.codes.n_bits}",
        "short_list": cfg.short_list, "rank_1": round(rank1 / n, 4),
        f"rank_{cfg.top}": round(rank_k / n, 4), "rank_1_exact_float": round(rank1_exact / n, 4),
        "top_verdict_same": round(same_top / n, 4), "threshold": cal.threshold,
        "ms_per_search": round(1000 * search_s / n, 2), "first_errors": first_wrong,
        "gallery_file": str(cfg.gallery_out) if cfg.gallery_out else None,
        "protocol": "probes: random LFW photos of people with >= 2 photos, each person keeping "
                    ">= 1 photo in the gallery; gallery: every other LFW photo; embeddings of "
                    "the face nearest the centre (cached); codes fitted on the gallery",
        "seconds": round(time.perf_counter() - started, 1),
        **measured_on(),
    }
