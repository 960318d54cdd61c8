"""The package's layout: imports go one way, with no loop, and files stay small.

Data flows readers -> contract Dataset -> masks -> models -> metrics and validation -> benchmark
and CLI -> app and notebooks; a module may import only modules of its own layer or earlier ones
(lazy imports inside functions count too), and the modules import no loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stimpute_core"

#: Layers of the flow, earliest first; a module belongs to the longest prefix listed.
LAYERS = [
    ("stimpute_core",),  # the package root holds the version only
    ("stimpute_core.data.contract", "stimpute_core.data.grid", "stimpute_core.data.terrain"),
    ("stimpute_core.data",),
    ("stimpute_core.masks",),
    ("stimpute_core.models",),
    ("stimpute_core.metrics",),
    ("stimpute_core.validation",),
    ("stimpute_core.protocol",),
    ("stimpute_core.benchmark",),
    ("stimpute_core.tiles",),  # runs imputers tile by tile over stores
    ("stimpute_core.tiled_scores", "stimpute_core.tile_sample"),  # scores, training samples
    ("stimpute_core.cli",),
]
#: Files allowed to be longer than :data:`MAX_LINES`, with the reason.
LONG_FILES: dict[str, str] = {}
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    # Imports for type hints only (under ``if TYPE_CHECKING:``) are not run: they make no loop.
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for c in candidates:
            if c in known:
                found.add(c)
    found.discard(name)
    return found


def _layer(name: str) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank >= 0, f"{name} is in no layer of the flow: add it to LAYERS"
    return rank


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_imports_follow_the_flow() -> None:
    backwards = [
        f"{name} imports {dep}"
        for name, deps in _graph().items()
        for dep in sorted(deps)
        if _layer(dep) > _layer(name)
    ]
    assert backwards == []


def test_readers_do_not_import_the_synthetic_scenario() -> None:
    graph = _graph()
    offenders = [
        n for n, deps in graph.items() if ".readers" in n and "stimpute_core.data.scenario" in deps
    ]
    assert offenders == []


def test_no_import_loop() -> None:
    graph = _graph()
    edges = graph
    state: dict[str, int] = {}
    loops: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                loops.append([*trail[trail.index(dep) :], dep] if dep in trail else [node, dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert loops == []


@pytest.mark.parametrize("folder", ["stimpute_core", "app"])
def test_files_stay_small(folder: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    unexplained = {k: v for k, v in long.items() if k not in LONG_FILES}
    assert unexplained == {}
