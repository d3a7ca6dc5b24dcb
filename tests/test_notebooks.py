"""The notebooks in notebooks/: stored without outputs, linked from the README, and run top to bottom at the tiny
budget (GON_NOTEBOOK_BUDGET=tiny: a few steps on a few images), each in its own kernel and folder; any error in any
cell fails the test with that cell's traceback."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]
#: run at once, each kernel on one thread: both cores busy, no thread oversubscription
KERNELS_AT_ONCE = 2


def test_the_four_notebooks_are_there():
    assert NAMES == [
        "01_gon_in_five_minutes.ipynb",
        "02_variational_gon.ipynb",
        "03_implicit_gon.ipynb",
        "04_your_own_images.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.metadata or cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    extra = set(notebook.metadata) - {"kernelspec", "language_info"}
    assert not dirty and not extra, (
        f"{path.name}: cells {dirty} or metadata {sorted(extra)} kept from a run: python scripts/strip_notebooks.py"
    )
    first = notebook.cells[1].source
    assert notebook.cells[0].cell_type == "markdown" and "pip" in first and "install" in first


def test_the_readme_links_every_notebook():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in NAMES if f"(notebooks/{name})" not in readme]
    assert not missing, f"README.md does not link {missing}"


def _execute(path: Path, folder: Path) -> str | None:
    """Run ``path`` in a fresh kernel inside ``folder``; None, or the error."""
    notebook = nbformat.read(path, as_version=4)
    folder.mkdir()
    try:
        where = {"metadata": {"path": str(folder)}}
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources=where).execute()
    except Exception as e:  # CellExecutionError carries the failing cell and its traceback
        return f"{path.name}: {e}"
    images = sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))
    return None if images else f"{path.name}: drew no picture"


def test_every_notebook_runs_top_to_bottom_at_the_tiny_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("GON_NOTEBOOK_BUDGET", "tiny")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    with ThreadPoolExecutor(KERNELS_AT_ONCE) as pool:
        errors = [e for e in pool.map(lambda p: _execute(p, tmp_path / p.stem), NOTEBOOKS) if e]
    assert not errors, "\n\n".join(errors)
