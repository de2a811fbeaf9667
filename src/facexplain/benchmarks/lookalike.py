"""Similar-looking pair sets for a human study, mined the way SLLFW was built.

SLLFW (Deng et al. 2017) keeps LFW's genuine pairs and replaces its random impostors with
people who look alike. Here "look alike" is decided by a *mining* model chosen independently of
the model being explained (default: dlib's ResNet mines, sface is explained), so the set is
not tuned to the explained model's blind spots: for every image of the pool, the most similar
image of another person of the same gender label is a candidate; identity pairs are kept once,
most similar first. A subset can then be picked on which the explained model is right about a
target fraction of the time (the paper chose 200 pairs where its network scored 75%).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from facexplain import settings
from facexplain.errors import InvalidArgument

FORMAT = "facexplain-study-pairs/1"


@dataclass(frozen=True)
class StudyPair:
    """Paths relative to the LFW image folder; scores are cosines of the two models."""

    a: str
    b: str
    same: bool
    mining_score: float
    model_score: float
    model_same: bool


def embed_images(backbone: str, paths: list[Path], progress: bool) -> np.ndarray:
    """Unit embeddings (N, D) of the LFW-convention face of each image (disk-cached)."""
    from facexplain.cache import DiskCache
    from facexplain.datasets.faces import embed_all, locate_all
    from facexplain.pipeline import FacePipeline

    pipe = FacePipeline(backbone)
    cache = DiskCache(settings.current().cache)
    located = locate_all(pipe, paths, cache, progress)
    emb = embed_all(pipe, located, cache, flip=False, batch_size=32, progress=progress)
    e = torch.from_numpy(np.stack([emb[p] for p in paths]).astype(np.float32))
    return torch.nn.functional.normalize(e, dim=1).numpy()


def nearest_impostors(emb: np.ndarray, identity: Sequence[str], female: Sequence[bool],
                      chunk: int = 1024) -> list[tuple[int, int, float]]:
    """For each image, its most similar image of another identity with the same gender label;
    identity pairs deduplicated, most similar first: (i, j, cosine)."""
    ids = np.asarray(identity)
    fem = np.asarray(female, dtype=bool)
    e = torch.from_numpy(emb)
    best: dict[tuple[str, str], tuple[int, int, float]] = {}
    for start in range(0, len(ids), chunk):
        sim = e[start : start + chunk] @ e.T
        rows = np.arange(start, min(start + chunk, len(ids)))
        mask = (ids[rows, None] == ids[None, :]) | (fem[rows, None] != fem[None, :])
        sim[torch.from_numpy(mask)] = -2.0
        score, j = sim.max(dim=1)
        for i, jj, s in zip(rows.tolist(), j.tolist(), score.tolist(), strict=True):
            if s <= -2.0:
                continue
            key = (min(ids[i], ids[jj]), max(ids[i], ids[jj]))
            if key not in best or s > best[key][2]:
                best[key] = (i, jj, float(s))
    return sorted(best.values(), key=lambda t: -t[2])


def pick_near_accuracy(pairs: Sequence[StudyPair], n: int, target: float,
                       seed: int = 0) -> list[StudyPair]:
    """``n`` pairs, half genuine and half impostor, on which the explained model is right for
    ``round(n * target)`` of them (as close as the pool allows). Within each kind the hardest
    pairs are preferred (the most alike impostors, the least alike genuine pairs)."""
    if n < 2 or n % 2:
        raise InvalidArgument(f"the number of study pairs must be even and >= 2, got {n}")
    if not 0.0 < target <= 1.0:
        raise InvalidArgument(f"target accuracy must be in (0, 1], got {target}")
    rng = random.Random(seed)
    kinds = {True: [p for p in pairs if p.same], False: [p for p in pairs if not p.same]}
    kinds[True].sort(key=lambda p: p.mining_score)
    kinds[False].sort(key=lambda p: -p.mining_score)
    half = n // 2
    for same, members in kinds.items():
        if len(members) < half:
            kind = "genuine" if same else "impostor"
            raise InvalidArgument(f"only {len(members)} {kind} pairs in the pool, need {half}")
    wrong_total = round(n * (1 - target))
    wrong = {s: [p for p in kinds[s] if p.model_same != s] for s in kinds}
    right = {s: [p for p in kinds[s] if p.model_same == s] for s in kinds}
    # Split the model's errors across both kinds as evenly as the pool allows.
    w_true = min(len(wrong[True]), max(wrong_total - len(wrong[False]), wrong_total // 2), half)
    w_false = min(len(wrong[False]), wrong_total - w_true, half)
    w_true = min(len(wrong[True]), wrong_total - w_false, half)
    chosen: list[StudyPair] = []
    for s, w in ((True, w_true), (False, w_false)):
        take_right = min(half - w, len(right[s]))
        chosen += wrong[s][:w] + right[s][:take_right]
        if w + take_right < half:  # not enough right answers: fill with more errors
            chosen += wrong[s][w : w + half - w - take_right]
    rng.shuffle(chosen)
    return chosen


def model_accuracy(pairs: Sequence[StudyPair]) -> float:
    return float(np.mean([p.model_same == p.same for p in pairs])) if pairs else float("nan")


def write_pairs(path: Path, pairs: Sequence[StudyPair], meta: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "meta": {**meta, "model_accuracy": model_accuracy(pairs),
                                       "n": len(pairs)},
            "pairs": [asdict(p) for p in pairs]}
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    return path


def read_pairs_file(path: Path) -> tuple[list[StudyPair], dict[str, object]]:
    """A pair set written by ``write_pairs`` (one line if it is anything else)."""
    from facexplain.validate import open_regular

    with open_regular(path, "pair set", InvalidArgument) as fh:
        try:
            body = json.loads(fh.read(64 * 2**20))
            pairs = [StudyPair(str(p["a"]), str(p["b"]), bool(p["same"]),
                               float(p["mining_score"]), float(p["model_score"]),
                               bool(p["model_same"])) for p in body["pairs"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"{path} is not a study pair set ({exc!s:.80})") from None
    for p in pairs:
        for rel in (p.a, p.b):
            if rel.startswith("/") or ".." in Path(rel).parts:
                raise InvalidArgument(f"{path}: image path {rel!r} leaves the image folder")
    if body.get("format") != FORMAT:
        raise InvalidArgument(f"{path}: format {body.get('format')!r}, expected {FORMAT}")
    return pairs, dict(body.get("meta", {}))


def mine_pairs(mining: str = "dlib-resnet", model: str = "sface", folds: int = 10,
               n: int = 200, target: float | None = 0.75, seed: int = 0,
               progress: bool = False, limit: int | None = None,
               ) -> tuple[list[StudyPair], dict[str, object]]:
    """Genuine pairs from LFW's pairs.txt (its first ``folds`` folds) and the most alike
    impostors among the same images by ``mining``; scored by ``model`` at its calibrated
    threshold; then ``n`` of them near ``target`` accuracy (None: the whole pool)."""
    from facexplain.backbones.registry import get_spec
    from facexplain.datasets.lfw import read_pairs, unique_images
    from facexplain.datasets.lfw_people import read_female_names
    from facexplain.scoring import get_calibration

    get_spec(mining)
    get_spec(model)
    if mining == model:
        raise InvalidArgument("the mining model must differ from the explained model "
                              f"(both are {model}); see --mining-model")
    s = settings.current()
    lfw_pairs = read_pairs(s.lfw_pairs)
    lfw_pairs = [p for p in lfw_pairs if p.fold < folds]
    if limit is not None:
        lfw_pairs = ([p for p in lfw_pairs if p.same][:limit]
                     + [p for p in lfw_pairs if not p.same][:limit])
    paths = unique_images(lfw_pairs, s.lfw_images)
    females = read_female_names(s.lfw / "female_names.txt")
    identity = [p.parent.name for p in paths]
    female = [p.name in females for p in paths]
    mined = embed_images(mining, paths, progress)
    explained = embed_images(model, paths, progress)
    threshold = get_calibration(model).threshold
    index = {p: i for i, p in enumerate(paths)}

    def pair(i: int, j: int, same: bool) -> StudyPair:
        m = float(explained[i] @ explained[j])
        return StudyPair(str(paths[i].relative_to(s.lfw_images)),
                         str(paths[j].relative_to(s.lfw_images)), same,
                         round(float(mined[i] @ mined[j]), 6), round(m, 6), m >= threshold)

    genuine = [pair(index[p.path_a(s.lfw_images)], index[p.path_b(s.lfw_images)], True)
               for p in lfw_pairs if p.same]
    impostors = [pair(i, j, False) for i, j, _ in nearest_impostors(mined, identity, female)]
    pool = genuine + impostors[: len(genuine)]
    chosen = pool if target is None else pick_near_accuracy(pool, n, target, seed)
    meta: dict[str, object] = {
        "mining_model": mining, "model": model, "threshold": threshold, "folds": folds,
        "target": target, "seed": seed, "limit": limit, "pool_genuine": len(genuine),
        "pool_impostors": min(len(impostors), len(genuine)),
        "pool_model_accuracy": model_accuracy(pool),
        "source": "LFW pairs.txt genuine pairs + most alike same-gender impostors"}
    return chosen, meta
