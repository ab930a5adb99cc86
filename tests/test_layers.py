"""The package's imports point down the layer table of DESIGN.md, with no cycle.

Every ``import`` counts, at module level or inside a function: a function-level import that hides
a cycle is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import otel_decisions

PACKAGE = Path(otel_decisions.__file__).parent

# Module (or package) prefix -> layer. Within a layer, imports are allowed as long as no cycle
# forms; instrumentation sits just above capture (it calls the recording path; capture never
# calls instrumentation).
LAYERS: dict[str, float] = {
    "otel_decisions.errors": 0,
    "otel_decisions.semconv": 0,
    "otel_decisions.settings": 0,
    "otel_decisions._version": 0,
    "otel_decisions._sdk_layout": 0,
    "otel_decisions.retention": 0,
    "otel_decisions.privacy": 1,
    "otel_decisions.integrity": 1,
    "otel_decisions._runtime": 1,
    "otel_decisions.capture": 2,
    "otel_decisions.instrumentation": 2.5,
    "otel_decisions.delivery": 3,
    "otel_decisions.store": 3,
    "otel_decisions.sdk": 4,
    "otel_decisions.catalogue": 4,
    "otel_decisions.verify": 4,
    "otel_decisions.output": 4,
    "otel_decisions.lifecycle": 5,
    "otel_decisions.reconcile": 5,
    "otel_decisions.oversight": 5,
    "otel_decisions.demo": 6,
    "otel_decisions.testing": 6,
    "otel_decisions.cli": 6,
    "otel_decisions": 6,  # the public surface re-exports from everything below
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> float:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules *module* imports (the most specific known name of each)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    """A new module or package is placed in the table on purpose, not by falling back to the root."""
    unplaced = sorted(
        name for name in _modules()
        if name != "otel_decisions" and not any(name == p or name.startswith(p + ".") for p in LAYERS if p != "otel_decisions")
    )
    assert not unplaced, f"add these to LAYERS (and DESIGN.md's table): {unplaced}"


def test_imports_point_down_the_layer_table() -> None:
    upward = sorted(
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if target != "otel_decisions" and _layer(target) > _layer(module)
    )
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its submodules is not a cycle with them
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target] if target in stack else [node, target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_function_level_import() -> None:
    """Guard against a checker that passes because it reads nothing."""
    graph = _graph()
    assert "otel_decisions.capture._record" in graph["otel_decisions.capture._decorator"]
    assert "otel_decisions.privacy" in graph["otel_decisions._runtime"]
    assert any(graph[m] for m in graph if m.startswith("otel_decisions.cli."))
