"""Run a batch on Ray: one actor per worker (models load once), pairs handed out as workers
free up, every finished pair recorded once by the driver.

Why actors: a model loads in seconds and a pair takes about as long, so each worker keeps its
pipeline. Why the driver owns the records: an actor that dies (OOM, SIGKILL, a lost node) is
restarted by Ray (``max_restarts=-1``) and the pairs it held are handed out again; a pair whose
worker died after writing its folder is simply written again, and only the driver appends to
the manifest (or CSV), so each pair is listed exactly once. Ray starts locally with no network
use (no dashboard, no usage stats) unless an address is given.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from facexplain.batch.pairs import BatchPair
from facexplain.batch.worker import BatchJob, PairWorker

Record = Callable[[list[dict[str, Any]]], None]
PER_WORKER = 2  # tasks queued per actor, so a worker never waits for the driver


@dataclass(frozen=True)
class BatchStats:
    """What one run did: pairs computed now, failed, retried after a worker died, skipped."""

    computed: int
    failed: int
    retried: int
    skipped: int
    workers: int
    seconds: float


def start_ray(address: str | None, workers: int) -> bool:
    """Connect to ``address`` or start local Ray; True if this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address is None:
        kwargs["num_cpus"] = workers
    ray.init(address=address, **kwargs)
    return True


def run_pairs(job: BatchJob, todo: Sequence[BatchPair], kind: str, record: Record,
              workers: int = 2, address: str | None = None, chunk: int = 1,
              retries: int = 3, skipped: int = 0, progress: bool = True,
              on_workers: Callable[[list[int]], None] | None = None) -> BatchStats:
    """Hand ``todo`` to ``workers`` actors (``kind``: 'explain' one pair per task, 'verify'
    ``chunk`` pairs per task) and pass each finished task's rows to ``record``."""
    import time

    import ray
    from ray.exceptions import RayError

    from facexplain.backbones.user import registered_module

    started_at = time.perf_counter()
    if not todo:
        return BatchStats(0, 0, 0, skipped, 0, 0.0)
    started = start_ray(address, workers)
    actor_cls: Any = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(PairWorker)
    registered = registered_module(job.backbone)
    actors: list[Any] = [actor_cls.remote(job, registered) for _ in range(workers)]
    queue = deque([list(todo[i:i + chunk]) for i in range(0, len(todo), chunk)])
    inflight: dict[Any, tuple[list[BatchPair], int]] = {}
    load = [0] * workers
    attempts: dict[str, int] = {}
    computed = failed = retried = 0
    bar = tqdm(total=len(todo), desc=f"batch {kind}", unit="pair", disable=not progress)

    def submit(i: int) -> None:
        while queue and load[i] < PER_WORKER:
            group = queue.popleft()
            dicts = [p.to_dict() for p in group]
            ref = (actors[i].explain.remote(dicts[0]) if kind == "explain"
                   else actors[i].verify.remote(dicts))
            inflight[ref] = (group, i)
            load[i] += 1

    try:
        if on_workers is not None:
            on_workers(ray.get([a.pid.remote() for a in actors]))
        for i in range(workers):
            submit(i)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                group, i = inflight.pop(ref)
                load[i] -= 1
                try:
                    out = ray.get(ref)
                except RayError as err:  # the worker died: hand its pairs out again
                    rows = _retry(group, err, attempts, retries, queue)
                    retried += len(group) - len(rows)
                else:
                    rows = out if isinstance(out, list) else [out]
                if rows:
                    record(rows)
                    computed += len(rows)
                    failed += sum(r["status"] != "done" for r in rows)
                    bar.update(len(rows))
                for k in sorted(range(workers), key=lambda k: load[k]):
                    submit(k)
    finally:
        bar.close()
        for a in actors:
            ray.kill(a, no_restart=True)
        if started:
            ray.shutdown()
    return BatchStats(computed, failed, retried, skipped, workers,
                      round(time.perf_counter() - started_at, 2))


def _retry(group: list[BatchPair], err: Exception, attempts: dict[str, int], retries: int,
           queue: deque[list[BatchPair]]) -> list[dict[str, Any]]:
    """Requeue the pairs of a task whose worker died; give up (a failed row) after
    ``retries`` deaths of the same pair, so a pair that kills every worker ends the loop."""
    rows = []
    for pair in group:
        attempts[pair.id] = attempts.get(pair.id, 0) + 1
        if attempts[pair.id] > retries:
            rows.append({**pair.to_dict(), "status": "failed", "error": type(err).__name__,
                         "reason": f"its worker died {attempts[pair.id]} times"})
        else:
            queue.appendleft([pair])
    return rows
