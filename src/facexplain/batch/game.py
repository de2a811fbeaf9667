"""The planted-difference game on Ray: pairs handed to actors, the driver keeps the log.

Why here: the game is a long run (seconds per pair and method) that a cluster shortens; the
batch runner already hands pairs to actors that load their models once, resends the pairs of
a worker that died and records each pair once. The driver owns the game's log, so an
interrupted run resumes from it whether it ran here or on Ray.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import torch

from facexplain.batch.pairs import BatchPair
from facexplain.batch.runner import run_pairs
from facexplain.batch.worker import BatchJob
from facexplain.benchmarks.planted import GameRun, PlantedConfig, start_game


class GameWorker:
    """An actor: the game's explainers, built once; one planted pair per task."""

    def __init__(self, cfg: PlantedConfig, threads: int = 1) -> None:
        torch.set_num_threads(max(1, threads))
        self.run = start_game(replace(cfg, progress=False), worker=True)

    def pid(self) -> int:
        return os.getpid()

    def explain(self, pair: dict[str, Any]) -> dict[str, Any]:
        record = self.run.play(int(str(pair["a"])))
        return {"id": pair["id"], "status": "done", "record": record, "worker": os.getpid()}


def ray_player(workers: int, address: str | None = None, threads: int = 1
               ) -> Any:
    """A ``Player`` for ``run_planted`` that spreads the pairs over ``workers`` Ray actors."""
    def play(run: GameRun, todo: list[int]) -> None:
        pairs = [BatchPair(run.key(i), str(i), "") for i in todo]

        def record(rows: list[dict[str, Any]]) -> None:
            for row in rows:
                if row.get("status") == "done":
                    run.record(row["record"])

        job = BatchJob(out=run.cfg.cache_dir / "planted", backbone=run.cfg.backbone,
                       threads=threads)
        run_pairs(job, pairs, "explain", record, workers, address,
                  progress=run.cfg.progress,
                  worker=(GameWorker, (run.cfg, threads)))

    return play
