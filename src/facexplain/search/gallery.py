"""Galleries for 1:N search: one embedding and one binary code per photo, the identity taken
from the photo's folder, stored in one ``.npz`` file; search ranks identities.

Why identities, not photos: an examiner asks "who is this?", so a person with many photos must
appear once, at the similarity of their closest photo, with the calibrated verdict of that
pair (the same rule as `facexplain verify`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facexplain.cache import DiskCache, image_key
from facexplain.errors import FacexplainError, InputNotFound, InvalidArgument
from facexplain.pipeline import FacePipeline
from facexplain.scoring import Calibration, Decision
from facexplain.search.binary import BinaryCodes
from facexplain.search.codes import CodeEncoder, CodeRecipe, encoder_from_arrays, fit_encoder
from facexplain.search.index import FaceIndex
from facexplain.types import VerdictOptions

GALLERY_FORMAT = "facexplain-gallery-v1"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
EMBED_VERSION = "gallery-emb-v1"  # largest face of a user photo (verify's rule), no flip


@dataclass(frozen=True)
class Gallery:
    """Photos (absolute paths), their identities, float embeddings and binary codes."""

    backbone: str
    paths: tuple[str, ...]
    identities: tuple[str, ...]
    embeddings: np.ndarray
    encoder: CodeEncoder
    codes: BinaryCodes

    def __post_init__(self) -> None:
        n = len(self.paths)
        if not (len(self.identities) == n == len(self.embeddings) == len(self.codes)):
            raise InvalidArgument("gallery paths, identities, embeddings and codes differ in "
                                  "length")

    def __len__(self) -> int:
        return len(self.paths)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "format": np.asarray(GALLERY_FORMAT), "backbone": np.asarray(self.backbone),
            "paths": np.asarray(self.paths, dtype=str),
            "identities": np.asarray(self.identities, dtype=str),
            "embeddings": self.embeddings.astype(np.float32), "words": self.codes.words,
            "n_bits": np.asarray(self.codes.n_bits), **self.encoder.to_arrays()}
        with path.open("wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        return path


def load_gallery(path: Path) -> Gallery:
    """Read what :meth:`Gallery.save` wrote; any other file is refused in one line."""
    if not path.is_file():
        raise InputNotFound(f"no such gallery file: {path}")
    try:
        with np.load(path) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read gallery {path}: {exc}") from None
    if str(data.get("format", "")) != GALLERY_FORMAT:
        raise InvalidArgument(f"{path} is not a facexplain gallery (build one with "
                              "`facexplain gallery build DIR --out G`)")
    return Gallery(str(data["backbone"]), tuple(str(p) for p in data["paths"]),
                   tuple(str(i) for i in data["identities"]), data["embeddings"],
                   encoder_from_arrays(data),
                   BinaryCodes(data["words"].astype(np.uint64), int(data["n_bits"])))


def gallery_photos(root: Path) -> list[tuple[Path, str]]:
    """Every photo under ``root`` with its identity: the name of the folder it is in (a photo
    directly in ``root`` is its own identity, named by the file name without extension)."""
    if not root.is_dir():
        raise InputNotFound(f"gallery folder {root}: no such directory")
    photos = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
                    and p.is_file())
    if not photos:
        raise InputNotFound(f"no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) under {root}")
    return [(p.resolve(), p.stem if p.parent == root else p.parent.name) for p in photos]


def encoder_for(embeddings: np.ndarray, recipe: CodeRecipe) -> CodeEncoder:
    """The recipe fitted on the gallery's own (unlabelled) embeddings; sign codes when the
    gallery is too small to fit a learned code (there the search is exact anyway)."""
    n_bits = recipe.n_bits or embeddings.shape[1]
    if recipe.method not in ("sign", "median") and len(embeddings) < 2 * n_bits:
        recipe = CodeRecipe("sign")
    return fit_encoder(embeddings, recipe)


def gallery_from_embeddings(backbone: str, paths: Iterable[str], identities: Iterable[str],
                            embeddings: np.ndarray, recipe: CodeRecipe) -> Gallery:
    emb = np.asarray(embeddings, dtype=np.float32)
    encoder = encoder_for(emb, recipe)
    return Gallery(backbone, tuple(paths), tuple(identities), emb, encoder, encoder.encode(emb))


def embed_photo(pipe: FacePipeline, path: Path, cache: DiskCache | None = None) -> np.ndarray:
    """One photo's largest face embedded (cached per image, weights and rule when given)."""
    key = f"{EMBED_VERSION}:{pipe.spec.name}@{pipe.embedding_key()}:{image_key(path)}"
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return hit["embedding"]
    face = pipe.align_path(path)
    emb = pipe.embed(face.pixels[None]).numpy()[0].astype(np.float32)  # inference mode inside
    if cache is not None:
        cache.put(key, embedding=emb)
    return emb


def build_gallery(root: Path, pipe: FacePipeline, recipe: CodeRecipe,
                  cache: DiskCache | None = None, progress: bool = True,
                  warn: Callable[[str], None] | None = None) -> Gallery:
    """Embed every photo under ``root``; photos without a readable face are skipped with a
    warning (one bad photo must not sink a gallery of thousands)."""
    kept: list[tuple[Path, str]] = []
    rows: list[np.ndarray] = []
    for path, identity in tqdm(gallery_photos(root), desc="gallery", unit="photo",
                               disable=not progress):
        try:
            rows.append(embed_photo(pipe, path, cache))
        except FacexplainError as exc:
            if warn is not None:
                warn(f"skipped {path}: {exc}")
            continue
        kept.append((path, identity))
    if not kept:
        raise InvalidArgument(f"no face found in any photo under {root}")
    return gallery_from_embeddings(pipe.spec.name, (str(p) for p, _ in kept),
                                   (i for _, i in kept), np.stack(rows), recipe)


@dataclass(frozen=True)
class Candidate:
    """One identity of the ranking: its closest photo and the calibrated decision on it (the
    same ``Calibration.decide`` every verdict uses)."""

    rank: int
    identity: str
    similarity: float
    photo: str
    decision: Decision

    @property
    def same(self) -> bool:
        return self.decision.same

    @property
    def confidence(self) -> float | None:
        return self.decision.confidence

    def to_dict(self) -> dict[str, object]:
        d = self.decision
        return {"rank": self.rank, "identity": self.identity,
                "similarity": round(self.similarity, 6), "photo": self.photo,
                "same": d.same, "answer": d.answer,
                "confidence": None if d.confidence is None else round(d.confidence, 6),
                "rule": d.rule, **_evidence(d)}


def _evidence(decision: Decision) -> dict[str, object]:
    """A candidate's strength of evidence: log10 LR, the population its fit came from, and the
    ENFSI verbal scale (the prior is the searcher's: in a watch list it is small)."""
    if decision.evidence is None:
        return {"log10_lr": None, "lr_population": "", "verbal": ""}
    from facexplain.confidence.likelihood import verbal

    log10_lr, population = decision.evidence
    return {"log10_lr": round(log10_lr, 4), "lr_population": population,
            "verbal": verbal(log10_lr)}


class GallerySearch:
    """A gallery's index: exact for small galleries, short list + exact re-rank for big ones."""

    def __init__(self, gallery: Gallery, calibration: Calibration,
                 short_list: int = 1000, options: VerdictOptions | None = None) -> None:
        self.gallery = gallery
        self.calibration = calibration
        self.options = options
        self.short_list = short_list
        self.identity = np.asarray(gallery.identities)
        self.index = FaceIndex(gallery.embeddings, gallery.codes)

    def photos(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Closest photos (similarities, indices) of each query embedding."""
        q = np.asarray(queries, dtype=np.float32)
        if len(self.gallery) <= self.short_list:
            return self.index.search_float(q, n)
        return self.index.search(q, self.gallery.encoder.encode(q), n, self.short_list)

    def identities(self, query: np.ndarray, top: int = 5) -> list[Candidate]:
        """The ``top`` identities nearest to one query embedding, best first. Photos are
        fetched in growing batches until ``top`` different people are among them (a person
        with hundreds of photos must not hide everyone else)."""
        n_photos = min(len(self.gallery), max(200, 20 * top))
        while True:
            sims, idx = self.photos(query[None], n_photos)
            out = self._group(sims[0], idx[0], top)
            if len(out) == top or n_photos >= len(self.gallery):
                return out
            n_photos = min(len(self.gallery), 4 * n_photos)

    def _group(self, sims: np.ndarray, idx: np.ndarray, top: int) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[str] = set()
        for s, i in zip(sims, idx, strict=True):
            if i < 0 or self.identity[i] in seen:
                continue
            seen.add(str(self.identity[i]))
            sim = float(s)
            out.append(Candidate(len(out) + 1, str(self.identity[i]), sim,
                                 self.gallery.paths[i],
                                 self.calibration.decide(sim, self.options)))
            if len(out) == top:
                break
        return out
