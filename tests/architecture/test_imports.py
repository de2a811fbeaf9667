"""The architecture holds: no import cycle among the modules of ``src/`` (imports inside
functions count, and so do ``TYPE_CHECKING`` ones: a type a module names lives in its layer or
below), the layers contract passes with at most ten layers, no source file is over 400 lines,
and every ``type: ignore`` in the benchmarks, CLI and analysis says why.

import-linter's ``acyclic_siblings`` contract looks at siblings package by package; this test
looks at every module against every other, so a cycle across packages fails here too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(
                        child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def _module_graph(annotations: bool) -> grimp.ImportGraph:
    """Every module of the package and its imports, without the package's own ``__init__``
    (the entry point re-exports the use cases lazily; it is not a layer). A copy is built:
    removing the root from grimp's graph would remove every module under it too."""
    full = grimp.build_graph("facexplain", exclude_type_checking_imports=not annotations,
                             cache_dir=None)
    graph = grimp.ImportGraph()
    for module in full.modules - {"facexplain"}:
        graph.add_module(module)
        for imported in full.find_modules_directly_imported_by(module) - {"facexplain"}:
            graph.add_import(importer=module, imported=imported)
    return graph


def test_the_module_graph_is_the_real_one() -> None:
    graph = _module_graph(annotations=True)
    assert len(graph.modules) > 150  # the graph the cycle test reads is not empty
    imported = graph.find_modules_directly_imported_by("facexplain.api.explanation")
    assert "facexplain.results" in imported


@pytest.mark.parametrize("annotations", [False, True], ids=["run-time", "with-annotations"])
def test_no_import_cycles_among_modules(annotations: bool) -> None:
    assert _cycles(_module_graph(annotations)) == []


def _layers() -> list[str]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        config = tomllib.load(fh)["tool"]["importlinter"]
    assert config["exclude_type_checking_imports"] is False  # annotations are held to layers
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return list(contract["layers"])


def test_the_ladder_has_at_most_ten_layers() -> None:
    layers = _layers()
    assert 5 <= len(layers) <= 10, layers
    named = {p.strip() for layer in layers for p in re.split(r"[:|]", layer)}
    packages = {p.stem if p.is_file() else p.name
                for p in (REPO / "src" / "facexplain").iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert packages <= named, f"not in any layer: {sorted(packages - named)}"


def test_no_source_file_is_over_400_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in (REPO / "src").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_every_type_ignore_in_benchmarks_cli_analysis_says_why() -> None:
    """A ``type: ignore`` there is allowed only with a reason after it on the same line."""
    bare = []
    for package in ("benchmarks", "cli", "analysis"):
        for path in (REPO / "src" / "facexplain" / package).rglob("*.py"):
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                ignore = re.search(r"type:\s*ignore(\[[^\]]*\])?(.*)$", line)
                if ignore and len(ignore.group(2).strip(" #-").split()) < 3:
                    bare.append(f"{path.relative_to(REPO)}:{no}")
    assert bare == []


def test_layers_contract_holds() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("lint-imports is not installed (dev dependency import-linter)")
    run = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
