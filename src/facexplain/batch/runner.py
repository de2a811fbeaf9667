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
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from facexplain.batch.pairs import BatchPair
from facexplain.batch.worker import BatchJob, PairWorker

Record = Callable[[list[dict[str, Any]]], None]
PER_WORKER = 2  # tasks queued per actor, so a worker never waits for the driver
RECHECK_S = 1.0  # how often a restarting actor is offered work again


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


class _Pool:
    """The actors and what each holds: tasks in flight, or a probe while it restarts."""

    def __init__(self, actors: list[Any], kind: str) -> None:
        self.actors = actors
        self.kind = kind
        self.inflight: dict[Any, tuple[list[BatchPair], int]] = {}
        self.load = [0] * len(actors)
        self.probes: dict[Any, int] = {}  # ping of an actor that lost a task; no work till back
        self.next_probe: dict[int, float] = {}

    def submit(self, i: int, queue: deque[list[BatchPair]]) -> None:
        down = i in self.probes.values() or i in self.next_probe
        while queue and self.load[i] < PER_WORKER and not down:
            group = queue.popleft()
            dicts = [p.to_dict() for p in group]
            actor = self.actors[i]
            ref = (actor.explain.remote(dicts[0]) if self.kind == "explain"
                   else actor.verify.remote(dicts))
            self.inflight[ref] = (group, i)
            self.load[i] += 1

    def lost(self, i: int, now: float) -> None:
        """Actor ``i`` lost a task (it died): probe it before giving it work again."""
        if i not in self.probes.values():
            self.next_probe.setdefault(i, now)

    def probe_due(self, now: float) -> None:
        for i, at in list(self.next_probe.items()):
            if at <= now:
                del self.next_probe[i]
                self.probes[self.actors[i].pid.remote()] = i

    def refs(self) -> list[Any]:
        return [*self.inflight, *self.probes]


class _StopOnSigint:
    """Ctrl-C asks the dispatch loop to stop between results (an asynchronous
    KeyboardInterrupt inside Ray's calls is not reliably raised); the loop then cleans up."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def run_pairs(job: BatchJob, todo: Sequence[BatchPair], kind: str, record: Record,
              workers: int = 2, address: str | None = None, chunk: int = 1,
              retries: int = 3, skipped: int = 0, progress: bool = True,
              on_workers: Callable[[list[int]], None] | None = None,
              worker: tuple[type, tuple[Any, ...]] | None = None) -> BatchStats:
    """Hand ``todo`` to ``workers`` actors (``kind``: 'explain' one pair per task, 'verify'
    ``chunk`` pairs per task) and pass each finished task's rows to ``record``. ``worker``:
    another actor class with its constructor arguments (default ``PairWorker(job, ...)``);
    it needs ``pid`` and the ``kind`` method.

    A task whose actor died (Ray reports ``ActorUnavailableError`` while it restarts) goes back
    to the queue; that actor gets work again once a ping answers. A pair in flight at more than
    ``retries`` deaths is recorded as failed, so a pair that kills every worker cannot loop.
    """
    import ray
    from ray.exceptions import RayError

    from facexplain.backbones.user_records import registered_module

    started_at = time.perf_counter()
    if not todo:
        return BatchStats(0, 0, 0, skipped, 0, 0.0)
    started = start_ray(address, workers)
    cls, args = worker or (PairWorker, (job, registered_module(job.backbone)))
    actor_cls: Any = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(cls)
    pool = _Pool([actor_cls.remote(*args) for _ in range(workers)], kind)
    queue = deque([list(todo[i:i + chunk]) for i in range(0, len(todo), chunk)])
    attempts: dict[str, int] = {}
    computed = failed = retried = 0
    bar = tqdm(total=len(todo), desc=f"batch {kind}", unit="pair", disable=not progress)
    stop = _StopOnSigint()
    try:
        if on_workers is not None:
            on_workers(ray.get([a.pid.remote() for a in pool.actors]))
        while (pool.inflight or queue) and not stop.requested:
            for k in sorted(range(workers), key=lambda k: pool.load[k]):
                pool.submit(k, queue)
            pool.probe_due(time.monotonic())
            refs = pool.refs()
            if not refs:  # every actor waits for its next probe
                time.sleep(RECHECK_S / 4)
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=RECHECK_S)
            for ref in ready:
                if ref in pool.probes:
                    i = pool.probes.pop(ref)
                    try:
                        ray.get(ref)
                    except RayError:  # still restarting: ask again later
                        pool.next_probe[i] = time.monotonic() + RECHECK_S
                    continue
                group, i = pool.inflight.pop(ref)
                pool.load[i] -= 1
                try:
                    out = ray.get(ref)
                except RayError as err:  # the worker died: hand its pairs out again
                    pool.lost(i, time.monotonic())
                    rows = _retry(group, err, attempts, retries, queue)
                    retried += len(group) - len(rows)
                else:
                    rows = out if isinstance(out, list) else [out]
                if rows:
                    stamp = round(time.time(), 3)
                    rows = [{**r, "finished_at": stamp} for r in rows]
                    record(rows)
                    computed += len(rows)
                    failed += sum(r["status"] != "done" for r in rows)
                    bar.update(len(rows))
    finally:
        stop.restore()
        bar.close()
        for a in pool.actors:
            ray.kill(a, no_restart=True)
        if started:
            ray.shutdown()
    if stop.requested:  # what is recorded stays; a rerun does the rest
        raise KeyboardInterrupt
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
