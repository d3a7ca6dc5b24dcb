"""mkdocs hooks: the API reference pages, written at build time from the package itself.

One page per documented package or module; a package's page holds every submodule found by ``pkgutil``, so a module
added (or moved) by anyone appears without editing a list. ``gon``'s page documents ``gon.__all__``, each name where
``gon`` imports it from. A public function or class without a docstring is a warning, which ``mkdocs build --strict``
(scripts/docs.sh) turns into an error.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import re

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.plugins.gon")

#: a Sphinx role left in a docstring as rendered (:func:`x` becomes ":func:<code>x</code>"), shown as the code alone
ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc|obj):(<code>)~?")

#: the reference's pages, in order: the public API (gon's own names) and the packages a user imports from
PACKAGES = ["gon.models", "gon.data", "gon.sampling", "gon.report", "gon.origin", "gon.metrics", "gon.storage.hub"]


def submodules(name: str) -> list[str]:
    """``name`` and, for a package, all its submodules (private ones, ``_x``, left out)."""
    module = importlib.import_module(name)
    found = [name]
    if hasattr(module, "__path__"):
        for info in sorted(pkgutil.walk_packages(module.__path__, name + "."), key=lambda i: i.name):
            if not any(part.startswith("_") for part in info.name.split(".")):
                found.append(info.name)
    return found


def undocumented(name: str) -> list[str]:
    """The public functions and classes defined in module ``name`` that have no docstring."""
    module = importlib.import_module(name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    missing = []
    for attr in names:
        value = getattr(module, attr, None)
        if (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == name:
            if not inspect.getdoc(value):
                missing.append(f"{name}.{attr}")
    return missing


def package_page(name: str) -> str:
    lines = [f"# {name}", ""]
    for module in submodules(name):
        for missing in undocumented(module):
            log.warning("%s has no docstring: the API reference documents every public name", missing)
        options = "\n    options:\n      members: false" if module == name and len(submodules(name)) > 1 else ""
        lines += [f"::: {module}{options}", ""]
    return "\n".join(lines)


def gon_page() -> str:
    import gon

    lines = ["# gon", "", "::: gon", "    options:", "      members: false", ""]
    lazy = getattr(gon, "_LAZY", {})
    for attr in gon.__all__:
        home = lazy.get(attr) or getattr(getattr(gon, attr), "__module__", "gon")
        # inherited members too: a model's save_pretrained, from_pretrained and push_to_hub come from its mixin
        lines += [f"::: {home}.{attr}", "    options:", "      heading_level: 2", "      inherited_members: true", ""]
    return "\n".join(lines)


def on_files(files, config):
    pages = {"reference/gon.md": gon_page()} | {f"reference/{p}.md": package_page(p) for p in PACKAGES}
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files


def on_page_content(html, page, config, files):
    return ROLE.sub(r"\1", html)
