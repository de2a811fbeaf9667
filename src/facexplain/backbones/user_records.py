"""The user's models as registry rows: ONNX records under the model home and torch modules
registered in this process, listed and removed without importing torch.

Why apart from ``backbones.user`` (the models themselves): the registry lists every backbone on
each lookup, and ``verify`` runs without torch; only building a user model needs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facexplain import settings
from facexplain.backbones.builtin import builtin_specs
from facexplain.backbones.spec import BackboneSpec
from facexplain.errors import InvalidArgument, UnknownBackbone

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel

USER_DIR = "user-backbones"
ONNX_LOADER = "facexplain.backbones.user:load_onnx"
TORCH_LOADER = "facexplain.backbones.user:load_registered"
UNCALIBRATED = "user model: calibrate with `facexplain benchmark lfw --write-calibration`"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

# Torch modules registered in this process (``register_backbone``): name -> (spec, model).
_REGISTERED: dict[str, tuple[BackboneSpec, FaceModel]] = {}


def user_dir(home: Path | None = None) -> Path:
    return (home or settings.current().home) / USER_DIR


def check_name(name: str) -> str:
    """A new backbone name: lower-case file-safe, and not a built-in one."""
    if not _NAME.match(name):
        raise InvalidArgument(f"backbone name '{name}': use lower-case letters, digits, '.', "
                              "'_' or '-' (at most 64)")
    if name in builtin_specs():
        raise InvalidArgument(f"backbone name '{name}' is built in; choose another name")
    return name


def spec_from_record(row: dict[str, Any]) -> BackboneSpec:
    """A stored user record as a registry row (the loader reads the rest of the record)."""
    points = tuple((float(x), float(y)) for x, y in row.get("points") or ())
    return BackboneSpec(
        name=str(row["name"]),
        description=str(row.get("description") or f"user ONNX model {row['file']}"),
        template=str(row["template"]),
        embedding_dim=int(row["embedding_dim"]),
        feature_nodes=tuple(row.get("feature_nodes") or ()),
        asset_names=(),
        loader=ONNX_LOADER,
        threshold=0.0,
        threshold_source=UNCALIBRATED,
        size=int(row.get("size") or 0),
        points=points,
        user=True,
        warning=model_warning(row),
    )


def model_warning(row: dict[str, Any]) -> str:
    """What every verdict of this user model says about its model check: failed and registered
    with --force, or not done (no LFW photos at registration); empty when it passed (or the
    record predates the check)."""
    if "model_check" not in row:
        return ""
    check = row["model_check"]
    if check is None:
        return (f"backbone '{row['name']}' was registered without the model check (no LFW "
                "photos to test it on): it may not tell people apart")
    if check.get("failed"):
        return (f"backbone '{row['name']}' FAILED the model check and was registered with "
                f"--force: {check['failed']}; its verdicts are not evidence")
    return ""


def read_records(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every user ONNX record under the model home, by name."""
    directory = user_dir(home)
    if not directory.is_dir():
        return {}
    rows = {}
    for path in sorted(directory.glob("*.json")):
        row = json.loads(path.read_text(encoding="utf-8"))
        rows[str(row["name"])] = row
    return rows


def onnx_specs(home: Path | None = None) -> dict[str, BackboneSpec]:
    return {name: spec_from_record(row) for name, row in read_records(home).items()}


def registered_specs() -> dict[str, BackboneSpec]:
    return {name: spec for name, (spec, _) in _REGISTERED.items()}


def remove_backbone(name: str, home: Path | None = None) -> list[Path]:
    """Forget a user model: its record and its copy of the file (or a Python registration)."""
    if name in _REGISTERED:
        del _REGISTERED[name]
        return []
    if name in builtin_specs():
        raise InvalidArgument(f"backbone '{name}' is built in and cannot be removed")
    rows = read_records(home)
    if name not in rows:
        valid = ", ".join(rows) or "none"
        raise UnknownBackbone(f"no user backbone '{name}'; user backbones: {valid}")
    removed = []
    for path in (user_dir(home) / rows[name]["file"], user_dir(home) / f"{name}.json"):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def user_spec(name: str = "user", template: str = "arcface-112",
              feature_nodes: Sequence[str] = (), embedding_dim: int = 0, size: int = 0,
              description: str = "") -> BackboneSpec:
    """A registry row for a user model from the few facts a face model needs."""
    return BackboneSpec(name=name, description=description or f"user model {name}",
                        template=template, embedding_dim=embedding_dim,
                        feature_nodes=tuple(feature_nodes), asset_names=(), loader=TORCH_LOADER,
                        threshold=0.0, threshold_source=UNCALIBRATED, size=size, user=True)


def registered_module(name: str) -> tuple[BackboneSpec, FaceModel] | None:
    """The spec and module registered from Python under ``name`` (None if none)."""
    return _REGISTERED.get(name)


def three_values(values: Sequence[float]) -> list[float]:
    """One value or three (R, G, B) -> three."""
    vals = [float(v) for v in values]
    if len(vals) == 1:
        return vals * 3
    if len(vals) != 3:
        raise InvalidArgument(f"give one value or three (R,G,B), not {len(vals)}: {vals}")
    return vals
