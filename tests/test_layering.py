"""The package import graph of tfcxr is acyclic and follows the layers, one way only:

base modules (backend, errors, io, preprocessing, metrics) -> data -> config / models ->
distill / quantize -> runs -> export / explain / evaluation -> cli. (``config`` reads datasets,
so it sits above data.)

Every import in tfcxr/ counts, function-level ones included (a lazy import does not dodge a
cycle, it hides one). Packages on the same layer may import each other one way only.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfcxr"
LAYERS = [("base",), ("data",), ("config", "models"), ("distill", "quantize"), ("runs",),
          ("export", "explain", "evaluation"), ("cli",)]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
BASE = "base"


def unit_of(module: str) -> str:
    """``tfcxr.runs.predictor`` -> ``runs``; ``tfcxr.config`` -> ``config``; any other
    top-level module (``tfcxr.io``) -> base."""
    parts = module.split(".")
    if len(parts) < 2:
        return BASE
    return parts[1] if parts[1] in RANK else BASE


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported tfcxr module, line) for every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
    return [(name, line) for name, line in found if name == "tfcxr" or name.startswith("tfcxr.")]


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> the imports that make the edge."""
    edges = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit_of(module_name(path))
        for target, line in imports(path):
            dest = unit_of(target)
            if dest != source:
                edges[(source, dest)].append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    return edges


def find_cycle(edges) -> list[str] | None:
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, stack + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - set(RANK) == set(), "add the new package to LAYERS in this test"


def test_imports_go_down_the_layers_only():
    wrong = [f"{source} (layer {RANK[source]}) must not import {dest} (layer {RANK[dest]}): "
             + "; ".join(where)
             for (source, dest), where in sorted(package_edges().items())
             if RANK[dest] > RANK[source]]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_the_package_graph_has_no_cycles():
    edges = package_edges()
    cycle = find_cycle(edges)
    if cycle:
        steps = [f"{a} -> {b}: {edges[(a, b)][0]}" for a, b in zip(cycle, cycle[1:])]
        pytest.fail("package import cycle " + " -> ".join(cycle) + "\n" + "\n".join(steps))


def test_the_checker_catches_a_cycle_and_an_upward_import():
    edges = {("runs", "export"): ["x"], ("export", "runs"): ["y"]}
    assert find_cycle(edges) in (["export", "runs", "export"], ["runs", "export", "runs"])
    assert find_cycle({("cli", "runs"): ["x"], ("runs", "data"): ["y"]}) is None
    assert RANK["export"] > RANK["runs"] > RANK["distill"] == RANK["quantize"] > RANK["models"]
