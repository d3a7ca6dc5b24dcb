"""The layering of src/gon: every import goes down (or stays in its own layer), never up.

Each module's imports of ``gon.*`` are read with ``ast`` (deferred imports inside functions too),
so a shortcut upward fails here even when it only runs on one code path.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gon"

#: the layers, lowest first (the folders of src/gon): a module may import its own layer and the layers before it
LAYERS = [
    ("core",),  # errors, the settings options are written with, checks on what comes in
    ("storage",),  # files: atomic writes, run directories and their lock, checkpoint files
    ("data",),  # datasets, splits and seeded subsets
    ("nets",),  # decoders that know nothing of GONs
    ("origin",),  # latents from gradient steps at the origin
    ("sampling",),  # latent statistics and what any model's latent space gives (sample, slerp, render)
    ("models",),  # the saved-model format, GON and its relatives and baselines, the registry, gon.load
    ("metrics",),  # test-set figures of a model
    ("report",),  # pictures, plots and the HTML report
    ("training",),  # the training step, the plain loop, Lightning and gon fit
    ("experiments", "bench", "explore"),  # gon reproduce, gon bench, gon explore
    ("cli",),  # the gon command: parsing and printing only
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def component(module: str) -> str | None:
    """``gon.models.core`` -> ``models``; None for the package itself and for other packages."""
    parts = module.split(".")
    return parts[1] if parts[0] == "gon" and len(parts) > 1 else None


def gon_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a gon module in ``path`` (gon imports absolutely only)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; gon imports absolutely"
            found += [(node.lineno, f"gon.{alias.name}") for alias in node.names] if node.module == "gon" else []
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if component(name)]


MODULES = sorted(p for p in SRC.rglob("*.py") if p != SRC / "__init__.py")


def test_every_module_has_a_layer():
    unplaced = {component("gon." + ".".join(p.relative_to(SRC).with_suffix("").parts)) for p in MODULES} - set(LEVEL)
    assert not unplaced, f"modules missing from LAYERS in tests/test_layers.py: {sorted(unplaced)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down(path):
    own = component("gon." + ".".join(path.relative_to(SRC).with_suffix("").parts))
    upward = [
        f"line {line}: {name} ({component(name)}, layer {LEVEL[component(name)]})"
        for line, name in gon_imports(path)
        if component(name) in LEVEL and LEVEL[component(name)] > LEVEL[own]
    ]
    assert not upward, f"{path.relative_to(SRC)} ({own}, layer {LEVEL[own]}) imports upward: {'; '.join(upward)}"


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The parser sees deferred imports: a model that imports the training loop inside a function is refused."""
    fake = SRC / "models" / "core.py"
    source = "def f():\n    from gon.training.loop import train_loop\n    return train_loop\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert [(2, "gon.training.loop")] == gon_imports(fake)
    with pytest.raises(AssertionError, match="imports upward: line 2: gon.training.loop"):
        test_imports_only_go_down(fake)


def module_name(path: Path) -> str:
    """``src/gon/report/pictures.py`` -> ``gon.report.pictures``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(paths) -> dict[str, set[str]]:
    """module -> the gon modules it imports by name (``from gon.a import b`` names gon.a.b when b is a module)."""
    known = {module_name(p) for p in SRC.rglob("*.py")}
    graph = {}
    for path in paths:
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                named = {f"{node.module}.{alias.name}" for alias in node.names} & known
                edges |= named or {node.module}
        graph[module_name(path)] = (edges & known) - {module_name(path)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first, each module entered once)."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                found.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_cycles():
    """No two modules import each other, directly or round a loop, in one layer too (deferred imports count)."""
    found = cycles(import_graph(MODULES))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_check_catches_a_cycle_inside_a_layer():
    graph = {"gon.report.pictures": {"gon.report.signals"}, "gon.report.signals": {"gon.report.pictures"}}
    assert cycles(graph) == [["gon.report.pictures", "gon.report.signals", "gon.report.pictures"]]
