"""The import graph of divplugin's own modules has no cycles, and every package imports only
packages in the layers below it (lazy imports inside functions count too)."""

import ast

from conftest import ROOT


def _graph() -> dict[str, set[str]]:
    files = {}
    for path in (ROOT / "divplugin").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    target = sub if sub in files else node.module  # `from pkg import submodule` is the submodule
                    if target in files and target != name:
                        graph[name].add(target)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in files and a.name != name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = _graph()
    assert len(graph) > 40 and "divplugin.diversity.scores" in graph["divplugin.mixtures.report"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# Lowest first. A module belongs to the longest prefix that names it; it may import modules of
# its own package and of lower layers, never of its own layer's other packages or above.
LAYERS = [
    ["divplugin.errors"],
    ["divplugin"],  # __version__, the errors
    ["divplugin.core"],  # leaf utilities: nothing of divplugin but errors
    ["divplugin.markov", "divplugin.data.records"],  # the algorithms; the row formats
    ["divplugin.generators"],
    ["divplugin.data"],  # the dataset-folder contract
    ["divplugin.diversity", "divplugin.execution", "divplugin.models"],
    ["divplugin.codeeval"],
    ["divplugin.mixtures"],
    ["divplugin.axolotl", "divplugin.lmeval"],  # the integrations (public paths)
    ["divplugin.experiments"],
    ["divplugin.cli"],
    ["divplugin.__main__"],
]


def _home(module: str) -> tuple[int, str]:
    """(layer, package) of ``module``: the longest prefix in LAYERS that names it."""
    best = max((p for layer in LAYERS for p in layer if module == p or module.startswith(p + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer), best


def _upward(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, targets in graph.items():
        layer, home = _home(name)
        for t in sorted(targets):
            t_layer, t_home = _home(t)
            if t_layer > layer or (t_layer == layer and t_home != home):
                bad.append(f"{name} -> {t}")
    return bad


def test_packages_import_only_lower_layers():
    graph = _graph()
    assert all(_home(name) for name in graph)  # every module has a layer
    assert _upward(graph) == []


def test_the_layer_check_finds_an_upward_import():
    assert _upward({"divplugin.core.host": {"divplugin.data.manifest"}}) == [
        "divplugin.core.host -> divplugin.data.manifest"
    ]
    assert _upward({"divplugin.diversity.select": {"divplugin.models.tiny"}}) == [
        "divplugin.diversity.select -> divplugin.models.tiny"
    ]
    assert _upward({"divplugin.data.writer": {"divplugin.data.records", "divplugin.core.fsutil"}}) == []
