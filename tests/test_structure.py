"""The engine's shape: no import circles, modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "dainr"
#: the longest a module of the engine may grow before it is split by concern
MAX_LINES = 450
#: modules allowed beyond MAX_LINES, each one concept (none today)
LONG_MODULES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every engine module ``path`` imports, at module level or inside functions
    (annotations-only imports under ``if TYPE_CHECKING`` excepted), with the packages
    that importing a submodule runs first."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    ancestors = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}

    def add(target: str) -> None:
        # importing a.b.c runs a.b first, unless it is a package this module is inside
        while target and target != "dainr" and target not in ancestors:
            if target in known:
                found.add(target)
            target = target.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                add(mod)
                for alias in child.names:  # ``from . import x`` and ``from .pkg import sub``
                    add(f"{mod}.{alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in files}
    return {module_name(p): imported_modules(p, known) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as a closed path), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_the_engine_has_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_walk_finds_a_circle_when_there_is_one():
    graph = import_graph()
    assert "dainr.data" in graph["dainr.io.h5contract"]  # the walk sees real imports
    graph["dainr.data"] = graph["dainr.data"] | {"dainr.io.h5contract"}
    cycle = find_cycle(graph)
    assert cycle is not None and {"dainr.data", "dainr.io.h5contract"} <= set(cycle)


def test_modules_stay_small():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {m: n for m, n in sizes.items() if n > MAX_LINES and m not in LONG_MODULES}
    assert not long, f"split by concern (over {MAX_LINES} lines): {long}"
