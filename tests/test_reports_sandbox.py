"""`opsbook reports diff` on two real validate-cluster runs, before and after a drill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from opsbook.sandbox import Sandbox, drills

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def opsbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsbook.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=600, cwd=ROOT)  # fmt: skip


@pytest.fixture
def taxi(sandbox: Sandbox, api: k8s.ApiClient) -> Iterator[None]:
    drills.reset(sandbox, api)
    drills.ensure_workloads(api)
    yield
    drills.reset(sandbox, api)
    core = k8s.CoreV1Api(api)
    core.delete_namespace(drills.NAMESPACE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and drills.NAMESPACE in {n.metadata.name for n in core.list_namespace().items}:
        time.sleep(0.5)


def test_diff_before_and_after_a_drill_shows_the_new_findings(
    sandbox: Sandbox, api: k8s.ApiClient, taxi: None, tmp_path: Path
) -> None:
    out = str(tmp_path / "reports")
    args = ("run", "validate-cluster", "-p", "restart_threshold=1", "-p", "pending_grace=0", "--output", out)
    first = opsbook(*args)
    assert first.returncode in (0, 1), first.stderr
    drills.run_drill("crashloop-after-deploy", sandbox, api)
    second = opsbook(*args)
    assert second.returncode in (0, 1), second.stderr

    d = opsbook("reports", "diff", "validate-cluster@previous", "validate-cluster@latest", "--output", out, "--json")
    assert d.returncode == 0, d.stderr
    diff = json.loads(d.stdout)
    new_objects = [f["object"] for f in diff["new"]]
    assert any(drills.NAMESPACE in o for o in new_objects), diff["new"]
    assert diff["score"][0] is not None and diff["score"][1] is not None
    assert diff["score_change"] == pytest.approx(diff["score"][1] - diff["score"][0])
    # the score is the share of checks passed: more workloads can raise it even with new findings
    text = opsbook("reports", "diff", "validate-cluster@previous", "validate-cluster@latest", "--output", out)
    assert f"new: {len(diff['new'])}" in text.stdout
    shown = opsbook("reports", "show", "validate-cluster@latest", "--output", out)
    assert json.loads(shown.stdout)["run_id"] == diff["to"]
