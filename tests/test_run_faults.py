"""Faults during a run: kill -9 never shows as success; the API server going away gives a clear status;
earlier reports stay intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from opsbook.engine import history
from opsbook.sandbox import Sandbox, faults
from opsbook.sandbox import cluster as kc
from test_outage_sandbox import _heal_control_plane

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "tests" / "notebooks"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "opsbook.cli", *args]


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.*") if p.parent != out}


def _entries(out: Path, runbook: str) -> list[dict[str, Any]]:
    p = out / "index.json"
    runs = json.loads(p.read_text())["runs"] if p.exists() else []
    return [e for e in runs if e["runbook"] == runbook]


def _wait_running(out: Path, runbook: str, proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _entries(out, runbook)
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError(f"{runbook} never entered the index as running")


def test_kill_9_during_a_run_is_never_a_success(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = subprocess.run(cli("run", str(NOTEBOOKS / "failing.ipynb"), "-p", "fail_at=none", "--output", str(out)),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    before = _files(out)
    proc = subprocess.Popen(cli("run", str(NOTEBOOKS / "slow.ipynb"), "--output", str(out), "--timeout", "900"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)  # fmt: skip
    running = _wait_running(out, "slow", proc)
    assert running["status"] == "running" and running["runner"]["pid"] == proc.pid
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its kernel
    proc.wait(30)

    [entry] = _entries(out, "slow")
    assert entry["status"] == "running"  # nobody could write more
    assert history.effective_status(entry) == "interrupted"  # its process is gone
    listed = subprocess.run(cli("reports", "list", "--output", str(out), "--runbook", "slow", "--json"),
                            capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert [e["status"] for e in json.loads(listed.stdout)] == ["interrupted"]
    assert not list(out.glob("slow/*.json"))  # no summary: the run never finished
    # the next run rewrites the index: the killed run shows as interrupted, never ok
    again = subprocess.run(cli("run", str(NOTEBOOKS / "failing.ipynb"), "-p", "fail_at=none", "--output", str(out)),
                           capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert again.returncode == 0, again.stderr
    page = (out / "index.html").read_text()
    row = next(r for r in page.split("<tr") if entry["run_id"] in r or ">slow<" in r)
    assert "interrupted" in row and ">ok<" not in row
    after = _files(out)
    assert all(after[k] == v for k, v in before.items())  # earlier reports byte-identical


@pytest.mark.slow
def test_api_server_restart_during_validate_cluster_gives_a_clear_status(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        cli("run", "validate-cluster", "-p", "wait=180", "-p", "count=2", "-p", "interval=2", "--output", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    _wait_running(out, "validate-cluster", proc)
    try:
        faults.restart_apiserver(sandbox, down_seconds=8)
    finally:
        _heal_control_plane(sandbox)
    proc.communicate(timeout=600)
    [summary_path] = (out / "validate-cluster").glob("*.json")
    summary = json.loads(summary_path.read_text())
    [entry] = _entries(out, "validate-cluster")
    assert entry["status"] == summary["status"] and proc.returncode == summary["exit_code"]
    assert summary["status"] in ("ok", "findings", "failed")
    if summary["status"] == "failed":
        assert summary["failed_step"] and "reach" in summary["error"]
    else:  # validation went on through the restart: two consecutive passes needed, attempts recorded
        validation = summary["records"]["validation"]
        assert validation["attempts"] >= 2 and validation["status"] in ("PASS", "FAIL")
        assert validation["line"].startswith(validation["status"])


@pytest.mark.slow
def test_api_server_down_for_a_whole_run_fails_it_at_a_named_step(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    kc.stop_component(sandbox.kwok_workdir, sandbox.name, "kube-apiserver")
    try:
        r = subprocess.run(cli("run", "validate-cluster", "--output", str(out)),
                           capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    finally:
        kc.start_component(sandbox.kwok_workdir, sandbox.name, "kube-apiserver")
        st = sandbox.state()
        assert st is not None
        kc.wait_api(Path(st.kubeconfig), timeout=90)
        _heal_control_plane(sandbox)
    assert r.returncode in (3, 4), r.stdout + r.stderr
    summaries = list((out / "validate-cluster").glob("*.json")) if (out / "validate-cluster").exists() else []
    failed = json.loads(summaries[0].read_text()) if summaries else {}
    if failed.get("status") == "failed":  # a step raised: ClusterUnreachable keeps its exit code 4 (else 3)
        assert failed["failed_step"] and failed["exit_code"] == r.returncode
        assert "cannot reach" in failed["error"]
        assert r.returncode == (4 if failed["error"].startswith("ClusterUnreachable") else 3)
    else:  # refused before the kernel started (environment pre-check): a report marked `environment`
        assert "no Kubernetes API server answers" in r.stderr, r.stderr
        summary = json.loads(summaries[0].read_text())
        assert summary["status"] == "environment" and summary["exit_code"] == 4
