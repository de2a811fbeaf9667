"""Batch on Ray over real LFW pairs: the same outputs with 1 and 2 workers, a worker killed with
SIGKILL mid-run still leaves every pair done exactly once, SIGINT then rerun computes only the
rest, a bad photo is recorded and does not stop the batch; the single-pair CLI never imports Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facexplain.api import verify
from facexplain.batch.jobs import CSV_FIELDS, batch_explain, batch_verify, read_csv_ids
from facexplain.batch.manifest import MANIFEST
from facexplain.batch.pairs import BatchPair, pair_id, read_batch_pairs
from facexplain.batch.worker import BatchJob
from facexplain.method_info import ExplainOptions
from tests.conftest import lfw_image

ray = pytest.importorskip("ray")

GOOD = [(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)),
        (lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)),
        (lfw_image("Aaron_Peirsol", 3), lfw_image("Aaron_Peirsol", 4)),
        (lfw_image("Dean_Barker", 1), lfw_image("Aaron_Peirsol", 1))]
FAST = ExplainOptions(patch=32, stride=32, fill="zero")
CLI = Path(sys.executable).parent / "facexplain"


def write_pairs(path: Path, pairs: list[tuple[Path, Path]]) -> Path:
    path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    from facexplain.batch.runner import start_ray

    started = start_ray(None, 2)
    yield
    if started:
        ray.shutdown()


def manifest_lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]


def test_pair_list_ids_are_stable_and_bad_lines_fail(tmp_path: Path) -> None:
    from facexplain.errors import PairsFileError

    pairs = read_batch_pairs(write_pairs(tmp_path / "p.tsv", GOOD), tmp_path)
    assert [p.id for p in pairs] == [pair_id(i, str(a), str(b)) for i, (a, b) in enumerate(GOOD)]
    (tmp_path / "bad.tsv").write_text("only-one-column\n")
    with pytest.raises(PairsFileError, match="line 1"):
        read_batch_pairs(tmp_path / "bad.tsv", tmp_path)


@pytest.mark.long
def test_one_and_two_workers_agree_and_a_killed_worker_loses_nothing(
        local_ray: None, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    pairs = read_batch_pairs(write_pairs(tmp_path / "p.tsv", [*GOOD[:3], (bad, GOOD[0][0])]),
                             tmp_path)
    one = BatchJob(out=tmp_path / "one", methods="occlusion", options=FAST)
    stats1 = batch_explain(one, pairs, workers=1, progress=False)
    assert (stats1.computed, stats1.failed, stats1.retried) == (4, 1, 0)

    killed: list[int] = []

    def kill_busy_worker(pids: list[int]) -> None:
        def watch() -> None:  # once a first pair is recorded, kill the *other* (busy) worker
            path = tmp_path / "two" / MANIFEST
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                lines = path.read_text().splitlines() if path.is_file() else []
                if lines:
                    victim = next(p for p in pids if p != json.loads(lines[0])["worker"])
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
                    return
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()

    two = BatchJob(out=tmp_path / "two", methods="occlusion", options=FAST)
    stats2 = batch_explain(two, pairs, workers=2, progress=False, on_workers=kill_busy_worker)
    assert killed and stats2.retried >= 1, (killed, stats2)  # the kill hit a pair in flight
    rows = manifest_lines(tmp_path / "two")
    assert sorted(str(r["id"]) for r in rows) == sorted(p.id for p in pairs)  # exactly once
    by_id = {str(r["id"]): r for r in rows}
    ref = {str(r["id"]): r for r in manifest_lines(tmp_path / "one")}
    failed = by_id[pairs[3].id]
    assert failed["status"] == "failed" and failed["error"] == "ImageDecodeError"
    assert "broken.jpg" in str(failed["reason"])
    for p in pairs[:3]:
        r, s = by_id[p.id], ref[p.id]
        assert r["status"] == "done" and r["answer"] == s["answer"]
        assert r["similarity"] == pytest.approx(s["similarity"], abs=1e-6)
        for npy in sorted((tmp_path / "one" / "pairs" / p.id).glob("*.npy")):
            other = np.load(tmp_path / "two" / "pairs" / p.id / npy.name)
            np.testing.assert_allclose(other, np.load(npy), atol=1e-6)
    assert not list((tmp_path / "two" / "pairs").glob(".*"))  # no half-written folder left
    gallery = (tmp_path / "two" / "index.html").read_text()
    assert all(p.id in gallery for p in pairs) and "max &Delta;" in gallery


@pytest.mark.long
def test_sigint_then_rerun_computes_only_the_rest(local_ray: None, tmp_path: Path) -> None:
    pairs_file = write_pairs(tmp_path / "p.tsv", GOOD)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(CLI), "batch", "explain", str(pairs_file), "--out", str(out), "--workers", "1",
         "--patch", "32", "--stride", "32", "--fill", "zero"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / MANIFEST).is_file() or \
            not (out / MANIFEST).read_text().strip():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no pair finished in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err, err
    first = manifest_lines(out)
    assert 1 <= len(first) < len(GOOD)

    pairs = read_batch_pairs(pairs_file, tmp_path)
    stats = batch_explain(BatchJob(out=out, options=FAST, methods="occlusion"), pairs,
                          workers=1, progress=False)
    assert stats.computed == len(GOOD) - len(first) and stats.skipped == len(first)
    rows = manifest_lines(out)
    assert sorted(str(r["id"]) for r in rows) == sorted(p.id for p in pairs)
    assert all(r["status"] == "done" for r in rows)


def test_batch_verify_matches_verify_and_resumes(local_ray: None, tmp_path: Path) -> None:
    pairs = [BatchPair(pair_id(i, str(a), str(b)), str(a), str(b)) for i, (a, b)
             in enumerate(GOOD)]
    csv_path = tmp_path / "v.csv"
    job = BatchJob(out=tmp_path)
    stats = batch_verify(job, pairs[:2], csv_path, workers=2, progress=False)
    assert stats.computed == 2
    stats = batch_verify(job, pairs, csv_path, workers=2, progress=False)
    assert (stats.computed, stats.skipped) == (2, 2)
    assert read_csv_ids(csv_path) == {p.id for p in pairs}
    import csv

    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    row = next(r for r in rows if r["id"] == pairs[1].id)
    expected = verify(pairs[1].a, pairs[1].b)
    assert float(row["similarity"]) == pytest.approx(expected.similarity, abs=1e-5)
    assert row["answer"] == ("same" if expected.same else "different")
    assert tuple(rows[0]) == CSV_FIELDS  # every field of the verdict is a column
    if expected.quality is not None:  # each photo's quality score, as verify gives it
        assert float(row["quality_b"]) == pytest.approx(expected.quality["b"]["score"], abs=1e-3)


def test_single_pair_commands_do_not_import_ray() -> None:
    code = ("import sys, facexplain.cli.app, facexplain.api, facexplain.pipeline; "
            "sys.exit(1 if 'ray' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def _same_verdict(got: dict[str, object], want: dict[str, object], where: str) -> None:
    """Every field of ``verify --json`` but the photo paths, equal (floats to 1e-6)."""
    for key, value in want.items():
        if key in ("path_a", "path_b"):
            continue
        assert key in got, f"{where} lacks the verdict field {key!r}"
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-7), (where, key)
        else:
            assert got[key] == value, (where, key, got[key], value)


@pytest.mark.parametrize("rule", [("0.01", "lfw"), ("0.001", "lookalike")])
def test_batch_api_and_cli_give_one_verdict(local_ray: None, tmp_path: Path,
                                            rule: tuple[str, str]) -> None:
    """The one verdict: batch verify, /api/v1/verify and `verify --json` agree field by field
    on two LFW pairs, the selective answer of --max-error included."""
    from fastapi.testclient import TestClient

    from facexplain.pipeline import FacePipeline
    from facexplain.types import VerdictOptions
    from facexplain.web.app import create_app
    from facexplain.web.jobs import Pipelines
    from tests.web.conftest import web_config

    max_error, population = rule
    options = VerdictOptions(float(max_error), population)
    chosen = GOOD[:2]
    cli = [json.loads(subprocess.run(
        [str(CLI), "verify", str(a), str(b), "--json", "--max-error", max_error,
         "--population", population], capture_output=True, text=True, check=True,
        timeout=300).stdout) for a, b in chosen]
    out = tmp_path / "v.jsonl"
    pairs = [BatchPair(pair_id(i, str(a), str(b)), str(a), str(b)) for i, (a, b)
             in enumerate(chosen)]
    batch_verify(BatchJob(out=tmp_path, verdict=options), pairs, out, workers=1,
                 progress=False)
    rows = {r["id"]: r for r in (json.loads(x) for x in out.read_text().splitlines())}
    pipes = Pipelines()
    pipes.put(FacePipeline("sface"))
    with TestClient(create_app(web_config(tmp_path / "w"), pipes)) as client:
        for (a, b), pair, want in zip(chosen, pairs, cli, strict=True):
            _same_verdict(rows[pair.id], want, "batch verify")
            files = {"photo_a": ("a.jpg", a.read_bytes(), "image/jpeg"),
                     "photo_b": ("b.jpg", b.read_bytes(), "image/jpeg")}
            answer = client.post("/api/v1/verify", files=files,
                                 data={"max_error": max_error, "population": population})
            assert answer.status_code == 200, answer.text
            _same_verdict(answer.json()["verdict"], want, "/api/v1/verify")
    assert all(c["max_error"] == float(max_error) and c["rule"] for c in cli)
