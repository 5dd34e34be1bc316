"""The import graph flows one way: the compiled core at the bottom, the entry points at the top.

Every import of a ``pyctl`` or ``fastpath`` module (also the lazy ones inside functions)
goes to its own layer or one below, and no two modules import each other, directly or around a loop, at import time.
"""
import ast
import pathlib

from tests.support import REPO

# Bottom to top.  A module may import from its own layer and the layers before it.
LAYERS = [
    ("fastpath",),
    ("pyctl.errors", "pyctl.deprecated"),
    ("pyctl.model",),
    ("pyctl.config",),
    ("pyctl.compile",),
    ("pyctl.kernel",),
    ("pyctl.ops",),
    ("pyctl.control",),
    ("pyctl.daemon",),
    ("pyctl.rig",),
    ("pyctl", "pyctl.cli", "pyctl.__main__", "pyctl.pytest_plugin"),
]


def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    for package in ("fastpath", "pyctl"):
        for path in sorted((REPO / package).rglob("*.py")):
            yield _module_name(path), path


def _layer(module):
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def _imports(path, *, top_level_only=False):
    """(line, imported module) of every project import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in ("pyctl", "fastpath"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    yield node.lineno, full if _is_module(full) else node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("pyctl", "fastpath"):
                    yield node.lineno, alias.name


def _is_module(name):
    base = REPO.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists() \
        or base.with_suffix(".pyx").exists()


def test_every_import_goes_down_or_sideways():
    wrong = []
    for module, path in _modules():
        for line, target in _imports(path):
            if _layer(target) > _layer(module):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {module} imports {target}")
    assert not wrong, "imports that go up a layer:\n" + "\n".join(wrong)


def test_no_import_cycles_at_import_time():
    graph = {}
    for module, path in _modules():
        graph[module] = {t for _, t in _imports(path, top_level_only=True)
                         if t != module and not module.startswith(t + ".")}
    # Tarjan's strongly connected components
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other: {cycles}"


def test_the_layer_test_sees_a_wrong_import(tmp_path):
    """The checks above can fail: an upward import is found."""
    assert _layer("pyctl.daemon.daemon") > _layer("pyctl.model.switch")
    assert _layer("pyctl.model.switch") < _layer("pyctl.rig.topology")
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from pyctl.daemon import daemon\n")
    assert [t for _, t in _imports(probe)] == ["pyctl.daemon.daemon"]
