"""One store for trained heads (xCos, part filters): where a checkpoint lives, how it is saved
and checked, which one is the default, and the quick head trained on first use.

Why: both heads are small torch modules trained on a frozen backbone and kept under the model
home; they used to mirror each other in paths, save/load code and default lookup, and only one
of them checked its file's sha256. A ``HeadStore`` row says what differs (folder, metadata key,
the names tried for the default, the training command); the code is shared.

Layout: ``<home>/<kind>/<backbone>/<name>.safetensors`` (weights; the config and training facts
in its metadata), ``<name>.json`` (the same metadata, readable) and ``<name>.safetensors.sha256``
(the digest recorded when saving: a truncated, altered or foreign file is refused).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from facexplain import assets
from facexplain.errors import AssetCorrupt, AssetMissing, InvalidArgument

Log = Callable[[str], None]


def digest_file(path: Path) -> Path:
    """Where a checkpoint's sha256 is recorded when it is saved: ``<name>.sha256`` beside it."""
    return path.with_name(path.name + ".sha256")


@dataclass(frozen=True)
class HeadStore:
    """Checkpoints of one kind of head.

    ``kind``: folder under the model home and metadata key in the file; ``title``: what the
    head is called in messages; ``train``: the command that trains it; ``defaults``: checkpoint
    names tried, in order, for a backbone's default head (the last one is the quick head).
    """

    kind: str
    title: str
    train: str
    defaults: tuple[str, ...]

    def path(self, backbone: str, name: str, root: Path | None = None) -> Path:
        return (root or assets.home()) / self.kind / backbone / f"{name}.safetensors"

    def save(self, head: torch.nn.Module, config: Any, path: Path,
             extra: dict[str, object] | None = None) -> Path:
        """Weights as safetensors (``config`` dataclass and ``extra`` in its metadata), the
        digest beside it, and a readable JSON twin."""
        from safetensors.torch import save_file

        meta = {"config": asdict(config), **(extra or {})}
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
        tmp = path.with_name(path.name + ".tmp")
        save_file(state, str(tmp), metadata={self.kind: json.dumps(meta)})
        digest_file(path).write_text(assets.sha256_of(tmp) + "\n")
        tmp.replace(path)
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        return path

    def load(self, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The weights and metadata of a checkpoint, after checking its recorded sha256."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not path.is_file():
            raise AssetMissing(f"no {self.title} at {path}; train one with "
                               f"`{self.train} --backbone NAME`")
        self._check_digest(path)
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(self.kind)
        if raw is None:
            raise InvalidArgument(f"{path} is not a {self.title} checkpoint "
                                  f"(no '{self.kind}' metadata)")
        return load_file(str(path)), json.loads(raw)

    def _check_digest(self, path: Path) -> None:
        record = digest_file(path)
        retrain = f"train it again with `{self.train}` (or delete it to get the default head)"
        if not record.is_file():
            raise AssetCorrupt(f"{self.title} {path} has no recorded sha256 ({record.name}); "
                               f"{retrain}")
        if assets.sha256_of(path) != record.read_text().strip():
            raise AssetCorrupt(f"{self.title} {path} differs from the one saved (sha256 "
                               f"mismatch); {retrain}")

    def default(self, backbone: str, root: Path | None = None) -> Path:
        """The first stored checkpoint among ``defaults``, else ``AssetMissing``."""
        candidates = [self.path(backbone, name, root) for name in self.defaults]
        for path in candidates:
            if path.is_file():
                return path
        raise AssetMissing(f"no trained {self.title} for '{backbone}' (looked in "
                           f"{candidates[0].parent}); run `{self.train} --backbone {backbone}`")

    def ensure_default(self, backbone: str, train_quick: Callable[[Path, Log], Path],
                       images: int, log: Log | None = None) -> Path:
        """``default``, or a quick head trained now by ``train_quick(target, log)`` on
        ``images`` LFW photos and stored as the last of ``defaults`` (once; cached)."""
        try:
            return self.default(backbone)
        except AssetMissing:
            pass
        say = log or (lambda m: print(m, file=sys.stderr))
        target = self.path(backbone, self.defaults[-1])
        say(f"no trained {self.title} for {backbone}: training a quick one on {images} LFW "
            f"photos (once; a few minutes; stored as {target})")
        return train_quick(target, say)

