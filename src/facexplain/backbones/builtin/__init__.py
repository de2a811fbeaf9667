"""The built-in face models: one module each, holding every fact about its model.

Each module declares ``SPEC``, a ``BackboneSpec`` with the model's input template, embedding
size, feature nodes for the map-based methods, the files set-up fetches (package, member and
pinned sha256) and builds, whether set-up exports a forward-only runtime, and the part-filter
head's layers; and its ``load`` function. The registry, set-up (``asset_catalog``) and the
heads read these rows, so adding a built-in model is one module here plus its records
(calibration, Θ). Model code (graph executors, dlib's ResNet) lives beside, in ``backbones``,
and is imported only when a model is loaded, so reading the rows costs no torch import.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from facexplain.backbones.spec import BackboneSpec

DEFAULT_BACKBONE = "sface"


@functools.cache
def builtin_specs() -> dict[str, BackboneSpec]:
    """Every built-in row by name: the default first, then by name (read once per process)."""
    rows: list[BackboneSpec] = []
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            rows.append(importlib.import_module(f"{__name__}.{module.name}").SPEC)
    rows.sort(key=lambda s: (s.name != DEFAULT_BACKBONE, s.name))
    return {s.name: s for s in rows}
