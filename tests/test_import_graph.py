"""The package's import graph: no cycles, each layer imports only from layers at or below it, and
the kernels import nothing else of fastmteb.

The graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of a fastmteb module, at module level, inside functions and under
``TYPE_CHECKING``. A lazy import inside a function hides a dependency from import time, not from
the design: it counts for both rules.

A ``TYPE_CHECKING`` import counts for the layers: a lower layer that names a higher layer's type
in its signatures knows that layer's concepts, even if the interpreter never loads it. It does not
count for cycles: it never runs, so it cannot make an initialisation order, and it is Python's
way for two modules of one layer to name each other's types (``runner.agreement`` types its
argument as ``runner.prepared.PreparedRun``, which calls it).

``from fastmteb.x import name`` is an edge to ``fastmteb.x.name`` when that is a module, else to
``fastmteb.x``. Importing a submodule also runs its parent packages' ``__init__``; that is how
Python works, not a dependency one module chose, so it is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Package name -> source folder (the kernels live at kernels/ but install as fastmteb.kernels).
SOURCES = {"fastmteb": ROOT / "fastmteb", "fastmteb.kernels": ROOT / "kernels" / "fastmteb_kernels"}

#: The layers, lowest first. A module may import from its own layer and the layers before it.
#: ``name.*`` is the package ``name`` and everything under it; a plain name is that module only.
#: This table is the one statement of the layers; docs describing them should quote it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernels", ("fastmteb.kernels.*",)),
    # helpers with no knowledge of tasks, models or results
    ("foundation", ("fastmteb.version", "fastmteb.paths", "fastmteb.prompt_type",
                    "fastmteb.distributed", "fastmteb.inputs")),
    ("encoding", ("fastmteb.encoding.*",)),
    # task metadata, the task types and the registry of tasks
    ("tasks", ("fastmteb.tasks.*",)),
    # loading a task's rows needs its type's column schema, so data sits above tasks
    ("data", ("fastmteb.data.*",)),
    ("results", ("fastmteb.results", "fastmteb.provenance", "fastmteb.aggregate",
                 "fastmteb.fallback")),
    ("runner", ("fastmteb.runner.*", "fastmteb.run_extras")),
    ("interfaces", ("fastmteb", "fastmteb.__main__", "fastmteb.cli", "fastmteb.callbacks",
                    "fastmteb.benchmark.*")),
)

#: Edges that break the rules today and belong to work in progress elsewhere, as
#: (importer, imported) with a comment naming the change that removes each. A listed edge that is
#: gone fails the tests, so the list cannot outlive its reason.
PENDING: frozenset[tuple[str, str]] = frozenset()

KERNELS = "fastmteb.kernels"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool = False  # every import of target by source is under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def _module_files(sources: Mapping[str, Path]) -> dict[str, Path]:
    modules = {}
    for package, folder in sources.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) bodies."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if isinstance(node, ast.If) and name == "TYPE_CHECKING":
            inside.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return inside


def _imported_names(
    tree: ast.AST, module: str, is_package: bool
) -> Iterable[tuple[str, int, bool]]:
    """(imported dotted name, line, type only) for every import in ``tree``, relative ones
    resolved; type only: under ``if TYPE_CHECKING:``."""
    type_only = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in type_only
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + is_package]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno, id(node) in type_only


def import_graph(sources: Mapping[str, Path] = SOURCES) -> dict[str, list[Edge]]:
    """Every module of ``sources`` (package name -> folder) -> its imports of the others."""
    files = _module_files(sources)
    top_level = {package.split(".")[0] for package in sources}

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, list[Edge]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: dict[str, Edge] = {}  # one per target: the first run-time import, else the first
        for name, line, type_only in _imported_names(tree, module, path.name == "__init__.py"):
            target = owner(name) if name.split(".")[0] in top_level else None
            if target is None or target == module:
                continue
            if target not in edges or (edges[target].type_only and not type_only):
                edges[target] = Edge(module, target, line, type_only)
        graph[module] = sorted(edges.values(), key=lambda e: e.line)
    return graph


def layer_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> int | None:
    """Index of ``module``'s layer (the most specific pattern wins), None when it has none."""
    best: tuple[int, int] | None = None  # (pattern length, layer)
    for index, (_, patterns) in enumerate(layers):
        for pattern in patterns:
            package = pattern.removesuffix(".*")
            below = pattern.endswith(".*") and module.startswith(package + ".")
            matches = module == package or below
            if matches and (best is None or len(package) > best[0]):
                best = (len(package), index)
    return None if best is None else best[1]


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle path ``[a, b, ..., a]`` per strongly connected component with a cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in component and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def upward_edges(graph: Mapping[str, list[Edge]], layers=LAYERS) -> list[Edge]:
    """Edges from a module to a module of a higher layer."""
    return [
        edge for edges in graph.values() for edge in edges
        if layer_of(edge.source, layers) is not None and layer_of(edge.target, layers) is not None
        and layer_of(edge.target, layers) > layer_of(edge.source, layers)
    ]


def _without_pending(graph: Mapping[str, list[Edge]]) -> dict[str, list[Edge]]:
    return {
        m: [e for e in edges if (e.source, e.target) not in PENDING] for m, edges in graph.items()
    }


def _run_time_adjacency(graph: Mapping[str, list[Edge]]) -> dict[str, list[str]]:
    return {m: [e.target for e in edges if not e.type_only] for m, edges in graph.items()}


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Edge]]:
    return import_graph()


# ---------------------------------------------------------------------------------------------
# The package


def test_every_module_has_a_layer(graph):
    missing = sorted(m for m in graph if layer_of(m) is None)
    assert not missing, f"add these modules to LAYERS in {Path(__file__).name}: {missing}"


def test_no_import_cycles(graph):
    cycles = find_cycles(_run_time_adjacency(_without_pending(graph)))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_layers_import_only_from_their_own_or_lower_layers(graph):
    names = [name for name, _ in LAYERS]
    upward = upward_edges(_without_pending(graph))
    assert not upward, "imports from a higher layer:\n" + "\n".join(
        f"{e}  [{names[layer_of(e.source)]} < {names[layer_of(e.target)]}]" for e in upward
    )


def test_kernels_import_nothing_else_of_fastmteb(graph):
    outside = [
        e for m, edges in graph.items() if m == KERNELS or m.startswith(KERNELS + ".")
        for e in edges if not (e.target == KERNELS or e.target.startswith(KERNELS + "."))
    ]
    assert not outside, "kernels must know nothing of the rest of fastmteb:\n" + "\n".join(
        map(str, outside)
    )


def test_every_pending_edge_still_exists(graph):
    """An edge that is gone must leave PENDING, so the allow-list cannot hide a new one."""
    present = {(e.source, e.target) for edges in graph.values() for e in edges}
    assert not PENDING - present, f"remove from PENDING: {sorted(PENDING - present)}"


def test_the_graph_sees_lazy_type_checking_and_package_attribute_imports(graph):
    """Guards the reader itself: each import form below exists in the package today."""
    targets = {m: {e.target: e.type_only for e in edges} for m, edges in graph.items()}
    assert targets["fastmteb.results"]["fastmteb.tasks.base"] is True  # under TYPE_CHECKING
    assert "fastmteb.tasks.registry" in targets["fastmteb"]  # inside a function
    assert "fastmteb.kernels" in targets["fastmteb.tasks.sts"]  # `from fastmteb import kernels`
    assert "fastmteb.kernels.bitext" in targets["fastmteb.kernels"]


# ---------------------------------------------------------------------------------------------
# The checkers on small graphs of their own


TOY_LAYERS = (("low", ("p.low.*",)), ("mid", ("p.mid",)), ("high", ("p.high", "p")))


def test_find_cycles_reports_the_cycle_path():
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": ["a"]}) == [["a", "a"]]
    assert find_cycles({"a": ["b"], "b": ["c"], "c": []}) == []
    two = find_cycles({"a": ["b"], "b": ["a"], "x": ["y"], "y": ["x"]})
    assert sorted(two) == [["a", "b", "a"], ["x", "y", "x"]]


def test_imported_names_resolve_relative_imports():
    source = "from . import a\nfrom ..b import c\nimport p.q\nif T:\n    from .d import e\n"
    tree = ast.parse(source)
    assert sorted(_imported_names(tree, "p.x.m", is_package=False)) == [
        ("p.b.c", 2, False), ("p.q", 3, False), ("p.x.a", 1, False), ("p.x.d.e", 5, False)
    ]
    package_init = ast.parse("from . import a")
    assert list(_imported_names(package_init, "p.x", is_package=True)) == [("p.x.a", 1, False)]


def test_type_checking_imports_are_marked_and_a_run_time_import_wins(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p import b\n"
    )
    (tmp_path / "b.py").write_text("import p.a\n")
    (tmp_path / "c.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    import p.b\ndef f():\n    from p.b import x\n"
    )
    toy = import_graph({"p": tmp_path})
    assert toy["p.a"] == [Edge("p.a", "p.b", 3, type_only=True)]
    assert toy["p.c"] == [Edge("p.c", "p.b", 5, type_only=False)]
    assert find_cycles(_run_time_adjacency(toy)) == []  # a -> b only for the type checker
    (tmp_path / "a.py").write_text("def f():\n    from p import b\n")  # now at run time
    cycles = find_cycles(_run_time_adjacency(import_graph({"p": tmp_path})))
    assert cycles == [["p.a", "p.b", "p.a"]]


def test_layer_of_takes_the_most_specific_pattern():
    assert layer_of("p.low", TOY_LAYERS) == 0 and layer_of("p.low.deep.er", TOY_LAYERS) == 0
    assert layer_of("p.mid", TOY_LAYERS) == 1 and layer_of("p.mid.sub", TOY_LAYERS) is None
    assert layer_of("p", TOY_LAYERS) == 2 and layer_of("p.lower", TOY_LAYERS) is None


def test_upward_edges_are_found_and_downward_ones_pass():
    toy = {
        "p.low.a": [Edge("p.low.a", "p.mid", 3), Edge("p.low.a", "p.low.b", 4)],
        "p.mid": [Edge("p.mid", "p.low.a", 1)],
        "p.high": [Edge("p.high", "p.mid", 1), Edge("p.high", "p", 2)],
        "p": [Edge("p", "p.high", 1)],
    }
    assert upward_edges(toy, TOY_LAYERS) == [Edge("p.low.a", "p.mid", 3)]
