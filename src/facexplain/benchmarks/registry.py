"""Benchmarks as registered tasks (the way MTEB and lm-evaluation-harness register theirs).

A task is a name, a config dataclass, a runner and a typed result that writes its JSON, its
markdown table and its figure. The ``facexplain benchmark`` group is built from ``TASKS``; each
task's command stamps its result once, through ``stamp`` (command line, date, machine), and the
tables of docs/BENCHMARKS.md that its result files feed are named in ``tables``
(``benchmarks.tables`` regenerates them).

Config and result types are named as ``"module:Class"`` and resolved on demand, so building the
command line imports no model code.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import shlex
import sys
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable


@runtime_checkable
class BenchmarkResult(Protocol):
    """What a benchmark returns: it knows its JSON and its markdown table."""

    def to_json(self) -> dict[str, Any]: ...

    def table(self) -> str: ...


@runtime_checkable
class HasFigure(Protocol):
    """A result that also draws itself."""

    def figure(self, path: Path) -> Path: ...


@dataclass(frozen=True)
class BenchmarkTask:
    """One registered benchmark: ``runner`` is its command (Typer reads its signature)."""

    name: str
    runner: Callable[..., None]
    help: str = ""
    config: str = ""  # "module:Class" of its config dataclass
    result: str = ""  # "module:Class" of its typed result
    tables: tuple[str, ...] = ()  # table kinds (benchmarks.table_kinds) its results feed
    group: str = "benchmark"

    @property
    def summary(self) -> str:
        """The help line: ``help``, else the runner's docstring."""
        return self.help or (self.runner.__doc__ or "").strip()

    def config_type(self) -> type:
        return resolve(self.config)

    def result_type(self) -> type:
        return resolve(self.result)


TASKS: dict[str, BenchmarkTask] = {}

F = TypeVar("F", bound=Callable[..., None])


def register_benchmark(name: str, *, config: str = "", result: str = "",
                       tables: tuple[str, ...] = (), help: str = "",
                       group: str = "benchmark") -> Callable[[F], F]:
    """Register the decorated command as the benchmark ``name`` (a second name is refused)."""
    def register(fn: F) -> F:
        if name in TASKS and TASKS[name].runner is not fn:
            raise ValueError(f"benchmark {name!r} registered twice")
        TASKS[name] = BenchmarkTask(name=name, runner=fn, help=help, config=config,
                                    result=result, tables=tables, group=group)
        return fn
    return register


def tasks(group: str = "benchmark") -> list[BenchmarkTask]:
    """The registered tasks of ``group``, in registration order."""
    return [t for t in TASKS.values() if t.group == group]


def resolve(ref: str) -> type:
    """``"package.module:Class"`` -> the class (imported now)."""
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"expected 'module:Class', got {ref!r}")
    value = getattr(importlib.import_module(module), name)
    if not isinstance(value, type):
        raise TypeError(f"{ref} is not a class")
    return value


def command_line(argv: list[str] | None = None) -> str:
    """This run's command, quoted so it can be pasted back (stored with every result)."""
    args = sys.argv[1:] if argv is None else argv
    return "facexplain " + " ".join(shlex.quote(a) for a in args)


def machine() -> str:
    """The machine in a few words: architecture and CPU cores."""
    return f"{platform.machine()}, {os.cpu_count()} cores"


def today() -> str:
    """The date every result carries (ISO)."""
    return dt.date.today().isoformat()


def measured_on(threads: str = "") -> dict[str, str]:
    """The date and machine a runner measured on (``threads``: e.g. "2 torch threads"), the
    one place a result's date is made (``stamp`` keeps it)."""
    return {"date": today(), "machine": f"{platform.machine()}, {threads}" if threads
            else platform.machine()}


D = TypeVar("D", bound=MutableMapping[str, Any])


def stamp(doc: D, argv: list[str] | None = None) -> D:
    """Stamp a result once: the command line that made it, the date and the machine (a runner
    that measured its own date or threads keeps them). Every benchmark command calls this."""
    doc["command"] = command_line(argv)
    doc.setdefault("date", today())
    doc.setdefault("machine", machine())
    doc.setdefault("cores", os.cpu_count())
    return doc
