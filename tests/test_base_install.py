"""The slim runner: a fresh venv with only the base install (as in deploy/Dockerfile, pinned by
deploy/constraints.txt) runs validate-cluster against the sandbox and renders the ClusterRole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]


def test_base_install_runs_a_runbook_and_ships_the_cluster_role(sandbox: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so the build never writes into the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "lib", src / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, opsbook = venv / "bin" / "python", venv / "bin" / "opsbook"
    # uv resolves the same metadata and constraints as the Dockerfile's pip, in seconds instead of minutes
    uv = Path(sys.executable).parent / "uv"
    installer = [str(uv), "pip", "install", "--python", str(py)] if uv.exists() else [str(py), "-m", "pip", "install"]
    pip = subprocess.run(
        [*installer, "-q", "-c", str(ROOT / "deploy" / "constraints.txt"), str(src)],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    missing = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('moto', 'jupyterlab', "
                              "'pytest') if u.find_spec(m)])"], capture_output=True, text=True, check=True)  # fmt: skip
    assert missing.stdout.strip() == "[]"  # the runner carries neither the sandbox, the lab nor the tests

    env = dict(os.environ, OPSBOOK_NOTEBOOKS=str(ROOT / "notebooks"), PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    out = tmp_path / "reports"
    r = subprocess.run([str(opsbook), "run", "validate-cluster", "--output", str(out)], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=900)  # fmt: skip
    assert r.returncode in (0, 1), r.stdout + r.stderr
    summary = json.loads(next((out / "validate-cluster").glob("*.json")).read_text())
    assert summary["status"] in ("ok", "findings") and summary["records"]["validation"]["score"] is not None
    assert summary["cluster"]["aws_account"] == "123456789012"

    rendered = subprocess.run([str(opsbook), "schedule", "render", "validate-cluster", "--cron", "0 9 * * MON-FRI",
                               "--output", "s3://reports/opsbook"], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    roles = [d for d in yaml.safe_load_all(rendered.stdout) if d["kind"] == "ClusterRole"]
    assert [r["metadata"]["name"] for r in roles] == ["opsbook-readonly"] and roles[0]["rules"]
    lab = subprocess.run([str(opsbook), "lab", "--no-browser"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)  # fmt: skip
    assert lab.returncode == 4 and "pip install 'opsbook[lab]'" in lab.stderr
