"""The house's layers (../shared/STYLE.md): imports point down only, and no module imports
itself back through others. Read from the source with ``ast`` (every import, also those inside
functions), so a new arrow upward or a new circle fails here before it bites at import time."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

# lowest first; a package's modules share its floor
LAYERS = {
    "ops": 1,
    "tcvc.io": 1,
    "tcvc.errors": 1,
    "tcvc.nets": 2,
    "tcvc.losses": 2,
    "tcvc.metrics": 2,
    "tcvc.color": 2,
    "tcvc.testing": 2,
    "tcvc.data": 3,
    "tcvc.inference": 3,
    "tcvc.weights": 3,  # verifies with tcvc.nets; the tasks' config layer resolves `released`
    "tcvc.evaluation": 4,
    "tcvc.models": 4,
    "tcvc.callbacks": 4,
    "tcvc.tasks": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def our_imports(path: Path) -> set[str]:
    """The modules of ours that ``path`` imports (``from a.b import c``: ``a.b.c`` when that is a
    module, else ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("tcvc", "ops")}


def graph() -> dict[str, set[str]]:
    files = [*ROOT.glob("tcvc/**/*.py"), *ROOT.glob("ops/**/*.py")]
    modules = {module_name(p): p for p in files}
    edges = {}
    for name, path in modules.items():
        edges[name] = {
            target
            for target in our_imports(path)
            if target in modules and target not in (name, "tcvc")
        }
    return edges


def floor(module: str) -> int:
    for prefix, layer in sorted(LAYERS.items(), key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} is on no floor: add it to LAYERS")


def test_imports_point_down_only():
    upward = [
        f"{source} (floor {floor(source)}) imports {target} (floor {floor(target)})"
        for source, targets in graph().items()
        if source not in ("tcvc", "ops")
        for target in targets
        if floor(target) > floor(source)
    ]
    assert upward == []


def test_no_import_circles():
    edges = graph()
    # a package's __init__ re-exports its modules: an edge into a package means its __init__
    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target.startswith(node + "."):  # a package importing its own modules
                continue
            if state.get(target) == 1:
                circles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert circles == []
