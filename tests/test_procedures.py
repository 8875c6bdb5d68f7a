"""Every `opsbook` command in runbooks/ names an existing notebook and valid parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

from opsbook.engine.procedures import check_all, commands
from opsbook.sandbox.drills import DRILLS

ROOT = Path(__file__).resolve().parents[1]


def test_every_procedure_command_is_valid() -> None:
    checked, problems = check_all(ROOT / "runbooks", drills=DRILLS)
    assert checked >= 20
    assert problems == []


def test_every_scenario_procedure_names_notebooks_and_a_drill() -> None:
    cmds = commands(ROOT / "runbooks")
    files = {c.file for c in cmds}
    for scenario in (
        "master-restart",
        "node-lost",
        "cpu-credits-exhausted",
        "certificate-expired",
        "crashloop-after-deploy",
        "bad-database-update",
        "create-cluster",
        "rolling-update",
    ):
        assert f"{scenario}.md" in files


def test_a_renamed_parameter_or_notebook_is_caught(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "runbooks", runbooks)
    notebooks.mkdir()
    for nb_path in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb_path, notebooks)
    # rename a parameter inside the copied validate-cluster notebook
    nb = notebooks / "validate-cluster.ipynb"
    nb.write_text(nb.read_text().replace("cert_days:", "certificate_days:"))
    # and rename a notebook
    (notebooks / "cluster-inventory.ipynb").rename(notebooks / "inventory.ipynb")
    _, problems = check_all(runbooks, notebooks, drills=DRILLS)
    assert any("cert_days" in p and "certificate-expired.md" in p for p in problems), problems
    assert any("cluster-inventory" in p for p in problems), problems
