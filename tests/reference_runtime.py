"""Run an original JavaScript runtime (tools/reference, node) on a float32 batch, for port checks.

The node scripts read a raw little-endian float32 file of shape given on the command line and
write the output the same way; this keeps the Python side independent of any JS binding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "tools" / "reference"


def reference_available() -> bool:
    return shutil.which("node") is not None and (REFERENCE_DIR / "node_modules").is_dir()


def run_node(script: str, batch: np.ndarray, extra_args: list[str] | None = None) -> np.ndarray:
    """Feed ``batch`` (float32, NHWC or as the script expects) to ``script``; return its output."""
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.f32"
        out = Path(tmp) / "out.f32"
        meta = Path(tmp) / "out.json"
        np.ascontiguousarray(batch, dtype="<f4").tofile(inp)
        cmd = ["node", str(REFERENCE_DIR / script), str(inp), json.dumps(list(batch.shape)),
               str(out), str(meta), *(extra_args or [])]
        subprocess.run(cmd, check=True, cwd=REFERENCE_DIR, capture_output=True, timeout=600)
        shape = json.loads(meta.read_text())["shape"]
        return np.fromfile(out, dtype="<f4").reshape(shape)
