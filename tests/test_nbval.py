"""nbval over notebooks/: every runbook executes headless against the sandbox (lax mode + sanitizers).

nbval runs in a child pytest so that its kernels start with the sandbox environment
this session exported (nbval starts a kernel at collection, before fixtures run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]


def test_nbval_over_all_runbook_notebooks(sandbox: Sandbox, tmp_path: Path) -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks to validate"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-sanitize-with",
            "tests/nbval_sanitize.cfg",
            "--nbval-cell-timeout",
            "600",
            "-p",
            "no:cacheprovider",
            "-o",
            "filterwarnings=",
            "-o",
            "addopts=",
            "-q",
            *[str(n.relative_to(ROOT)) for n in notebooks],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, OPSBOOK_OUTPUT_DIR=str(tmp_path)),  # post-mortem drafts, plans: never into notebooks/
        timeout=1800,
        check=False,
    )
    tail = proc.stdout[-4000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= len(notebooks), tail
