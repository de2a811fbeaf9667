"""Wall time of the faithfulness benchmark, an earlier commit against this one, same machine.

Each run is a fresh process over the first N of the 300 held-out pairs (half genuine, the
benchmark's own selection and interleaving), with a fresh cache folder (detections included,
nothing resumed) and the same model home; old and new runs alternate so that machine load
hits both alike. The old source tree comes from ``git archive`` (as ``cold_start.py``). Both
runs' per-pair curve AUCs are compared: the speed-up must not change the numbers.
Usage: .venv/bin/python bench/faithfulness_speed.py [--old bb17cae] [--pairs 10] [--runs 1]
       [--backbone sface] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from cold_start import old_source

from facexplain.settings import DATA_ENV

# The data folder, named explicitly: an old tree unpacked elsewhere cannot find it by itself.
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

RUN = """
import json, sys, tempfile, time
sys.path.insert(0, {src!r})
from pathlib import Path
from facexplain.benchmarks.faithfulness import FaithfulnessConfig, run_faithfulness
cfg = FaithfulnessConfig(backbone={backbone!r}, n_pairs={pairs}, cache_dir=Path({cache!r}),
                         resume=False, progress=False)
t0 = time.perf_counter()
result = run_faithfulness(cfg)
wall = time.perf_counter() - t0
print(json.dumps({{"wall_s": wall, "seconds_per_pair": result.summary["seconds_per_pair"],
                  "per_pair_auc": result.summary["per_pair_auc"]}}))
"""


def run(src: Path, backbone: str, pairs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", RUN.format(
            src=str(src), backbone=backbone, pairs=pairs, cache=cache)],
            capture_output=True, text=True, env={**os.environ, DATA_ENV: str(DATA)})
    if done.returncode != 0:
        raise SystemExit(f"the run of {src} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def auc_diff(a: object, b: object) -> float:
    """Largest |difference| between two nested per-pair AUC tables of the same shape."""
    if isinstance(a, dict) and isinstance(b, dict):
        return max((auc_diff(a[k], b[k]) for k in a if k in b), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return max((abs(float(x) - float(y)) for x, y in zip(a, b, strict=True)), default=0.0)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="bb17cae")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--backbone", default="sface")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    new_src = Path(__file__).resolve().parents[1] / "src"
    walls: dict[str, list[float]] = {"old": [], "new": []}
    last: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"old": old_source(args.old, Path(tmp)), "new": new_src}
        for i in range(args.runs):
            for who in (("old", "new") if i % 2 == 0 else ("new", "old")):
                last[who] = run(sources[who], args.backbone, args.pairs)
                walls[who].append(float(last[who]["wall_s"]))  # type: ignore[arg-type]
                print(f"{who}: {walls[who][-1]:.1f} s for {args.pairs} pairs", flush=True)
    old, new = min(walls["old"]), min(walls["new"])
    diff = auc_diff(last["old"]["per_pair_auc"], last["new"]["per_pair_auc"])
    print(f"old {old:.1f} s, new {new:.1f} s: new/old {new / old:.2f}; "
          f"300 pairs ~{old / args.pairs * 300 / 60:.0f} -> {new / args.pairs * 300 / 60:.0f} "
          f"min; max |AUC difference| {diff:.1e}")
    if args.json:
        args.json.write_text(json.dumps({
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "command": "python bench/faithfulness_speed.py " + " ".join(sys.argv[1:]),
            "old": args.old, "pairs": args.pairs, "walls": walls,
            "seconds_per_pair_per_method": {k: v["seconds_per_pair"] for k, v in last.items()},
            "max_abs_auc_diff": diff}, indent=2) + "\n")


if __name__ == "__main__":
    main()
