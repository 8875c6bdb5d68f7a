"""Every notebook in the repository is committed without outputs: no cluster data or secrets in git."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "tests" / "notebooks").glob("*.ipynb"))


def test_the_runbooks_are_all_here() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {"validate-cluster", "outage-analysis", "cluster-inventory", "cost-credit-review"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    assert "papermill" not in nb.metadata or not nb.metadata["papermill"].get("parameters"), "executed copy"


RUNBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _opsbook_imports(path: Path) -> set[str]:
    """The opsbook modules a notebook's code cells import (``import x`` and ``from x import y``)."""
    found: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("opsbook"):
                # `from opsbook import report` and `from opsbook.runbooks import x` import modules by name
                packages = ("opsbook", "opsbook.runbooks")
                found |= {f"{node.module}.{a.name}" if node.module in packages else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("opsbook")}
    return found


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_a_notebook_reaches_the_library_through_its_facade_only(path: Path) -> None:
    """notebooks/X.ipynb imports runbooks/X.py and opsbook.report, nothing else of the library."""
    facade = f"opsbook.runbooks.{path.stem.replace('-', '_')}"
    assert (ROOT / "lib" / Path(*facade.split("."))).with_suffix(".py").exists(), facade
    assert _opsbook_imports(path) <= {facade, "opsbook.report"}, path.name
    assert facade in _opsbook_imports(path), path.name
