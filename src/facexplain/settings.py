"""Where facexplain reads and writes: one place for the paths every command shares.

Why: the LFW path used to be spelled relative to the working directory in many modules and the
calibration stores wrote into the installed package. Everything now asks ``current()``, which
reads the environment each call (no module state), so a test or a server can point a run at
another model home or data root by setting ``FACEXPLAIN_HOME`` / ``FACEXPLAIN_DATA``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "FACEXPLAIN_HOME"
DATA_ENV = "FACEXPLAIN_DATA"
# src/facexplain/settings.py -> the repository root is three levels up; its sibling shared/.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_root() -> Path:
    """``../shared/data`` beside this checkout; else beside the working directory."""
    beside_repo = _REPO_ROOT.parent / "shared" / "data"
    return beside_repo if beside_repo.is_dir() else Path("../shared/data").resolve()


@dataclass(frozen=True)
class Settings:
    """The model home (assets, caches, user records) and the data root (LFW, Yale, masks)."""

    home: Path
    data: Path

    @property
    def lfw(self) -> Path:
        return self.data / "lfw"

    @property
    def lfw_images(self) -> Path:
        return self.lfw / "lfw-deepfunneled"

    @property
    def lfw_pairs(self) -> Path:
        return self.lfw / "pairs.txt"

    @property
    def masks(self) -> Path:
        return self.data / "masks"

    @property
    def yale(self) -> Path:
        return self.data / "yalefaces"

    @property
    def cache(self) -> Path:
        """Derived per-image results (landmarks, embeddings, maps), keyed by their inputs."""
        return self.home / "cache"

    @property
    def records(self) -> Path:
        """User overrides of the packaged records (calibration, Θ, mean faces)."""
        return self.home / "records"


def cpu_threads() -> int:
    """Threads for onnxruntime sessions: torch's setting once torch is loaded (benchmarks set
    it), else ``OMP_NUM_THREADS``, else every core, as torch would choose."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def current() -> Settings:
    """The settings in force now, from the environment (read on every call)."""
    home_env = os.environ.get(HOME_ENV)
    data_env = os.environ.get(DATA_ENV)
    home = Path(home_env).expanduser() if home_env else Path.home() / ".cache" / "facexplain"
    data = Path(data_env).expanduser() if data_env else default_data_root()
    return Settings(home=home, data=data)
