"""Cold ``facexplain verify`` of one LFW pair: where the time goes, and old commit vs new.

Each run is a fresh Python process (as a user's shell starts it). ``--old REV`` checks the
source tree of an earlier commit out into a temporary folder (``git archive``) and runs it with
the same interpreter and model home; old and new runs alternate so machine load hits both
alike, and the medians are compared. The split times each step of the new code in one more
fresh process: imports, detector, backbone (forward-only runtime or torch module), detection
and alignment of both photos, embedding.
Usage: .venv/bin/python bench/cold_start.py [--old bb17cae] [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw" / "lfw-deepfunneled"
PHOTOS = (str(LFW / "Abdel_Madi_Shabneh" / "Abdel_Madi_Shabneh_0001.jpg"),
          str(LFW / "Dean_Barker" / "Dean_Barker_0001.jpg"))
RUN = ("import sys; sys.path.insert(0, {src!r}); sys.argv = ['facexplain', 'verify', *{photos!r}]; "
       "from facexplain.cli.app import main; main()")
SPLIT = """
import sys, time; t = [time.perf_counter()]
import facexplain.cli.app; from facexplain.pipeline import FacePipeline
from facexplain.api import verdict_for_pair; t.append(time.perf_counter())
from facexplain.align import MTCNN; det = MTCNN(); t.append(time.perf_counter())
pipe = FacePipeline('sface', detector=det)
kind = 'runtime' if pipe.runtime() is not None else 'torch module'
if kind != 'runtime': pipe.model
t.append(time.perf_counter())
pair = pipe.pair(*{photos!r}); t.append(time.perf_counter())
verdict_for_pair(pipe, pair, 'a', 'b', forward_only=True); t.append(time.perf_counter())
names = ['import facexplain', 'load detector (' + det.runtime + ')', 'load backbone (' + kind + ')',
         'detect + align 2 photos', 'embed + score']
split = dict(zip(names, [b - a for a, b in zip(t, t[1:])]))
split['torch imported'] = 'torch' in sys.modules
print(repr(split))
"""


def old_source(rev: str, into: Path) -> Path:
    """The ``src`` folder of commit ``rev``, unpacked into ``into``."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def wall(src: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUN.format(src=str(src), photos=PHOTOS)], check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="bb17cae", help="Commit to compare against.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    new_src = REPO / "src"
    with tempfile.TemporaryDirectory() as tmp:
        old_src = old_source(args.old, Path(tmp))
        wall(new_src), wall(old_src)  # warm the file cache for both
        old, new = [], []
        for _ in range(args.runs):
            old.append(wall(old_src))
            new.append(wall(new_src))
    out = subprocess.run([sys.executable, "-c", SPLIT.format(photos=PHOTOS)], check=True,
                         capture_output=True, text=True).stdout
    split = eval(out.strip().splitlines()[-1])  # noqa: S307 (our own child's repr of a dict)
    result = {"machine": f"{platform.machine()} {platform.processor()}", "old": args.old,
              "old_s": statistics.median(old), "new_s": statistics.median(new),
              "old_runs": old, "new_runs": new, "new_split_s": split}
    print(f"cold verify, median of {args.runs}: old ({args.old}) {result['old_s']:.2f} s, "
          f"new {result['new_s']:.2f} s, new/old {result['new_s'] / result['old_s']:.2f}")
    for step, value in split.items():
        print(f"  {step:<40} {value:6.2f} s" if isinstance(value, float)
              else f"  {step:<40} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
