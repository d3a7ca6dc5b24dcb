"""Strip the outputs of notebooks (default: every notebooks/*.ipynb) before committing them.

git keeps the notebooks without outputs, so that diffs show code and text only and no picture or log is stale;
tests/test_notebooks.py checks it. Usage: python scripts/strip_notebooks.py [NOTEBOOK.ipynb ...]
"""

import sys
from pathlib import Path

import nbformat

#: the notebook metadata kept; everything else (widgets, a kernel's own paths) is dropped
KEPT_METADATA = ("kernelspec", "language_info")


def strip(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook.metadata = {k: v for k, v in notebook.metadata.items() if k in KEPT_METADATA}
    for cell in notebook.cells:
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def main(paths: list[str]) -> None:
    for path in paths or sorted(Path(__file__).resolve().parents[1].glob("notebooks/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.write(strip(notebook), path)
        print("stripped", path)


if __name__ == "__main__":
    main(sys.argv[1:])
