"""notebooks/create-cluster.ipynb runs headless through `opsbook run` against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsbook.kops.spec import ClusterSpec
from opsbook.runbooks.create_cluster import compare_sandbox, shape_sandbox
from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]
KEY = str(ROOT / "tests" / "data" / "create_devtest.pub")


def run(tmp_path: Path, *params: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    args = [sys.executable, "-m", "opsbook.cli", "run", "create-cluster", "--output", str(tmp_path)]
    for p in params:
        args += ["-p", p]
    proc = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ), timeout=900, cwd=ROOT)
    runs = sorted((tmp_path / "create-cluster").glob("*.json"))
    assert runs, proc.stderr[-3000:]
    return proc, json.loads(runs[-1].read_text())


@pytest.fixture
def restore_shape(sandbox: Sandbox) -> Iterator[None]:
    st = sandbox.state()
    assert st is not None
    before = ClusterSpec(**{**st.spec, "zones": tuple(st.spec["zones"]),
                            "master_zones": tuple(st.spec["master_zones"])})
    yield
    shape_sandbox(before, sandbox.name, stream=lambda m: None)
    sandbox.activate()


def test_default_run_is_a_dry_run_plan(sandbox: Sandbox, tmp_path: Path) -> None:
    # a CIDR no other test's VPC uses (the overlap check would rightly flag a clash as high)
    proc, summary = run(tmp_path, f"ssh_public_key={KEY}", f"network_cidr=10.{uuid.uuid4().int % 200 + 20}.0.0/16")
    high = [f for f in summary["findings"] if f["severity"] in ("high", "critical")]
    assert proc.returncode == 0, (proc.stderr[-2000:], high)
    records = summary["records"]
    assert records["apply"]["action"] == "dry-run" and records["apply"]["changed"] is False
    assert records["plan"]["source"] == "kops dry-run"
    igs = {g["name"]: g["min_size"] for g in records["plan"]["instance_groups"]}
    assert igs == {"control-plane-eu-central-1a": 1, "nodes-eu-central-1a": 2, "nodes-eu-central-1b": 2,
                   "nodes-eu-central-1c": 1, "bastions": 1}
    first = records["plan"]["commands"][0]
    assert first.startswith("kops create cluster --cloud aws --name opsbook.k8s.local")
    checks = {f["check"]: f for f in summary["findings"]}
    assert checks["create.state.versioning"]["severity"] == "info"  # passed
    assert "create.advice.burstable-standard" in checks and "create.advice.single-control-plane" in checks
    html = next((tmp_path / "create-cluster").glob("*.html")).read_text()
    assert "kind: InstanceGroup" in html  # kops' dry-run specs are saved with the report


def test_bad_input_stops_before_anything(sandbox: Sandbox, tmp_path: Path) -> None:
    proc, summary = run(tmp_path, "control_plane_zones=eu-central-1a,eu-central-1b",
                        "network_cidr=8.8.0.0/16")
    assert proc.returncode == 2  # a BadInput raised in the kernel keeps its exit code (opsbook.errors)
    assert summary["status"] == "failed" and summary["exit_code"] == 2
    assert "etcd needs an odd number" in summary["error"] and "8.8.0.0/16 is public" in summary["error"]
    assert summary["failed_step"].lower().startswith("check the parameters")


def test_sandbox_provider_with_original_parameters(sandbox: Sandbox, tmp_path: Path,
                                                   restore_shape: None) -> None:
    proc, summary = run(tmp_path, "provider=sandbox", "apply=true", "network_cidr=172.10.0.0/16",
                        f"ssh_public_key={KEY}", f"sandbox_name={sandbox.name}")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1 only if advice reached --fail-on
    assert summary["status"] != "failed", summary.get("error")
    assert summary["records"]["apply"]["action"] in ("reshaped", "unchanged")
    sandbox.activate()
    spec = ClusterSpec(node_count=5)
    table = compare_sandbox(spec)
    assert table["match"].all() and table["expected"].sum() == 6
