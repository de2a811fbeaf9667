"""Throughput of `facexplain batch` on this machine: `batch explain` (occlusion k16 s8) with 1 and
2 workers, `batch verify` over LFW's 6,000 pairs, and `facexplain verify` run once per pair in a
shell loop (measured on a sample, extrapolated).

Rates: wall time of the whole command (Ray start and model loading included) and the steady
rate between the first and the last finished pair. The load average is recorded: on a shared
machine the numbers are lower bounds.
Usage: .venv/bin/python bench/batch_throughput.py [--explain-pairs 12] [--verify-pairs 6000]
       [--loop-pairs 8] [--json docs/results/batch-throughput.json]
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
import time
from pathlib import Path

from facexplain import settings

CLI = str(Path(sys.executable).parent / "facexplain")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rates(rows: list[dict[str, object]], wall: float) -> dict[str, object]:
    stamps = sorted(float(r["finished_at"]) for r in rows if "finished_at" in r)  # type: ignore[arg-type]
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 60 if len(stamps) > 2 else None
    return {"pairs": len(rows), "wall_s": round(wall, 1),
            "pairs_per_min_wall": round(len(rows) / wall * 60, 2),
            "pairs_per_min_steady": None if steady is None else round(steady, 2),
            "failed": sum(r.get("status") != "done" for r in rows)}


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def batch_explain(n: int, workers: int, tmp: Path) -> dict[str, object]:
    out = tmp / f"explain-{workers}"
    wall = run([CLI, "batch", "explain", str(settings.current().lfw_pairs), "--out", str(out),
                "--limit", str(n), "--workers", str(workers), "--patch", "16", "--stride", "8"])
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return {"workers": workers, **rates(rows, wall), "load_after": load()}


def batch_verify(n: int, workers: int, tmp: Path) -> dict[str, object]:
    import csv

    out = tmp / f"verify-{workers}.csv"
    wall = run([CLI, "batch", "verify", str(settings.current().lfw_pairs), "--out", str(out),
                "--limit", str(n), "--workers", str(workers)])
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    done = [r for r in rows if r["status"] == "done"]
    same = [r for r in done if r["same"] in ("True", "False")]
    acc = sum((r["verdict"] == "same") == (r["same"] == "True") for r in same) / max(1, len(same))
    return {"workers": workers, "pairs": len(rows), "wall_s": round(wall, 1),
            "pairs_per_min_wall": round(len(rows) / wall * 60, 1),
            "accuracy_at_calibrated_threshold": round(acc, 4), "load_after": load()}


def cli_loop(n: int) -> dict[str, object]:
    from facexplain.datasets.lfw import read_pairs

    s = settings.current()
    pairs = read_pairs(s.lfw_pairs)[:n]
    start = time.perf_counter()
    for p in pairs:
        subprocess.run([CLI, "verify", str(p.path_a(s.lfw_images)), str(p.path_b(s.lfw_images))],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
    per_pair = (time.perf_counter() - start) / n
    return {"pairs": n, "seconds_per_pair": round(per_pair, 2),
            "pairs_per_min": round(60 / per_pair, 2),
            "hours_for_6000": round(6000 * per_pair / 3600, 2), "load_after": load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--explain-pairs", type=int, default=12)
    ap.add_argument("--verify-pairs", type=int, default=6000)
    ap.add_argument("--loop-pairs", type=int, default=8)
    ap.add_argument("--parts", default="loop,explain,verify")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    parts = args.parts.split(",")
    result: dict[str, object] = {}
    if args.json and args.json.is_file():  # parts measured by an earlier run stay
        result = json.loads(args.json.read_text())
    result[f"run {'+'.join(parts)}"] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus", "load_before": load(),
        "command": "python bench/batch_throughput.py " + " ".join(sys.argv[1:])}

    def save() -> None:
        print(json.dumps(result, indent=2), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        if "loop" in parts:
            result["loop_verify"] = cli_loop(args.loop_pairs)
            save()
        if "explain" in parts:
            explained: list[dict[str, object]] = []
            result["explain"] = explained
            for w in (1, 2):
                explained.append(batch_explain(args.explain_pairs, w, Path(tmp)))
                save()
        if "verify" in parts:
            result["verify"] = batch_verify(args.verify_pairs, 2, Path(tmp))
            save()


if __name__ == "__main__":
    main()
