"""The early kernel's helpers: which imports it warms up, which environment it gets (no kernel started)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from opsbook.engine.kernel import kernel_environment, notebook_imports


def _notebook(path: Path, *sources: str) -> Path:
    cells = [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
             for s in sources]
    cells.insert(0, {"cell_type": "markdown", "source": "import not_code", "metadata": {}})
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_only_top_level_absolute_imports_of_code_cells_are_warmed(tmp_path: Path) -> None:
    nb = _notebook(
        tmp_path / "n.ipynb",
        "import pandas as pd\nfrom opsbook import report, plots\n",
        "%matplotlib inline\nimport never_seen\n",  # a magic: not Python, skipped whole
        "if False:\n    import conditional\nfrom . import relative\nfrom os.path import *\n",
        ["import a.b\n", "x = 1\n"],
    )
    assert notebook_imports(nb) == [("pandas", []), ("opsbook", ["report", "plots"]), ("os.path", []), ("a.b", [])]
    assert notebook_imports(tmp_path / "missing.ipynb") == []


def test_the_kernel_gets_the_runs_environment(tmp_path: Path) -> None:
    env = kernel_environment({"KOPS_CLUSTER_NAME": "c.k8s.local"}, "/tmp/art", tmp_path / "kc")
    assert env["KOPS_CLUSTER_NAME"] == "c.k8s.local" and env["OPSBOOK_OUTPUT_DIR"] == "/tmp/art"
    assert env["KUBECONFIG"] == str(tmp_path / "kc")
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
