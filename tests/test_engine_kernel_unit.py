"""The early kernel's helpers: which imports it warms up, which environment it gets (no kernel started)."""

from __future__ import annotations

import json
import os
import subprocess
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


LOUD_KERNEL = """
import nbformat, sys
nb = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_markdown_cell("# Loud kernel"),
    nbformat.v4.new_code_cell("import os\\nos.write(2, b'KERNEL-OWN-STDERR\\\\n')  # fd 2, as a ZMQ error"),
])
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
path = sys.argv[1] + "/loud.ipynb"
nbformat.write(nb, path)
from opsbook.engine import run
from opsbook.engine.catalog import load_runbook
if sys.argv[2] == "fallback":
    run.start_kernel = lambda *a, **k: None  # as when the early kernel could not start: nbclient starts one
result = run.run_runbook(load_runbook(__import__("pathlib").Path(path)), {}, output=sys.argv[1] + "/reports")
print(result.exit_code)
"""


def test_the_kernel_process_stderr_goes_to_its_log_not_the_callers(tmp_path: Path) -> None:
    """Both ways a run gets its kernel (started early, or by nbclient) keep the kernel's own stderr off ours."""
    for how in ("early", "fallback"):
        work = tmp_path / how
        work.mkdir()
        env = {**os.environ, "TMPDIR": str(work)}  # the kernel log is a temp file: here, to be read
        proc = subprocess.run([sys.executable, "-c", LOUD_KERNEL, str(work), how], capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip
        assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "0", (how, proc.stderr[-2000:])
        assert "KERNEL-OWN-STDERR" not in proc.stderr + proc.stdout, how
        logs = list(work.glob("opsbook-kernel-*.log"))
        assert [p.read_text() for p in logs] == ["KERNEL-OWN-STDERR\n"], (how, logs)
