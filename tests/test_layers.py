"""The layering of src/gon: every import goes down (or stays in its own layer), never up.

Each module's imports of ``gon.*`` are read with ``ast`` (deferred imports inside functions too),
so a shortcut upward fails here even when it only runs on one code path.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gon"

#: the layers, lowest first: a module may import its own layer and the layers listed before it
LAYERS = [
    # no models: options and their checks, files, data, CPUs
    ("errors", "settings", "validate", "atomic", "lock", "cpu_memory", "threads", "subsets", "images", "data", "runs")
    + ("checkpointing", "provenance"),
    ("nets",),  # decoders that know nothing of GONs
    ("origin",),  # latents from gradient steps at the origin
    ("sampling",),  # latent statistics and what any model's latent space gives (sample, slerp, render)
    ("pretrained", "hub"),  # the saved-model format every model inherits (a known class, no names); the Hub
    ("models",),  # GON, VariationalGON, ImplicitGON, baselines, generalisations
    ("metrics", "graphs", "loop", "ensemble"),  # test-set figures; the one training step, plain loop, stacked seeds
    ("registry",),  # names -> classes and the one model builder
    ("loading",),  # gon.load: saved models, runs, checkpoints by name
    (
        "config",
        "guards",
        "threads_callback",
        "graphed_training",
        "progress",
        "report",
    ),  # run settings, training callbacks, pictures, HTML report
    ("training",),  # the training step, Lightning and gon fit
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
    """The parser sees deferred imports: a model that imports the registry inside a function is refused."""
    fake = SRC / "models" / "core.py"
    source = "def f():\n    from gon.registry import build\n    return build\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert [(2, "gon.registry")] == gon_imports(fake)
    with pytest.raises(AssertionError, match="imports upward: line 2: gon.registry"):
        test_imports_only_go_down(fake)
