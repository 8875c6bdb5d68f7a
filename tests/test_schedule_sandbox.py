"""A schedule on the sandbox: apply (day-name cron, IRSA annotation), a Job from the CronJob, its command
run locally with its environment, list, delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]
ROLE_ARN = "arn:aws:iam::123456789012:role/opsbook-runner.sched.sa.opsbook.k8s.local"


def opsbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsbook.cli", *args],
        capture_output=True, text=True, env=env or dict(os.environ), timeout=600, cwd=ROOT,
    )  # fmt: skip


def _gone(fn: object, *args: str) -> bool:
    try:
        fn(*args)  # type: ignore[operator]
    except ApiException as e:
        return e.status == 404
    return False


def test_schedule_apply_job_run_list_delete(sandbox: Sandbox, api: k8s.ApiClient, tmp_path: Path) -> None:
    ns = f"sched-{uuid.uuid4().hex[:6]}"
    r = opsbook(
        "schedule", "apply", "cluster-inventory", "--cron", "0 9 * * MON-FRI", "--time-zone", "Europe/Berlin",
        "--output", "/reports", "--namespace", ns, "-p", "not_joined_severity=medium",
        "--env", "AWS_REGION=eu-central-1", "--service-account-annotation", f"eks.amazonaws.com/role-arn={ROLE_ARN}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "next runs (Europe/Berlin): Mon" in r.stderr or "next runs (Europe/Berlin): " in r.stderr
    assert "applied CronJob/opsbook-cluster-inventory" in r.stdout

    batch, core, rbac = k8s.BatchV1Api(api), k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    cj = batch.read_namespaced_cron_job("opsbook-cluster-inventory", ns)
    assert cj.spec.schedule == "0 9 * * MON-FRI" and cj.spec.time_zone == "Europe/Berlin"
    assert any(m.manager == "opsbook" and m.operation == "Apply" for m in cj.metadata.managed_fields)
    sa = core.read_namespaced_service_account("opsbook-runner", ns)
    assert sa.metadata.annotations["eks.amazonaws.com/role-arn"] == ROLE_ARN
    assert rbac.read_cluster_role("opsbook-readonly").rules

    # the CronJob controller's path: a Job from the CronJob's template
    kubectl = os.environ["OPSBOOK_KUBECTL"]
    job_name = f"manual-{uuid.uuid4().hex[:6]}"
    made = subprocess.run([kubectl, "-n", ns, "create", "job", job_name, "--from=cronjob/opsbook-cluster-inventory"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    job = batch.read_namespaced_job(job_name, ns)
    assert job.metadata.owner_references[0].kind == "CronJob"
    deadline = time.monotonic() + 60
    pods: list[k8s.V1Pod] = []
    while time.monotonic() < deadline and not pods:
        pods = core.list_namespaced_pod(ns, label_selector=f"job-name={job_name}").items
        time.sleep(0.5)
    assert pods, "the Job controller made no pod"
    pod = pods[0].spec
    assert pod.service_account_name == "opsbook-runner"

    # run the Job's command here, with the Job's environment and its mounted ConfigMap
    container = pod.containers[0]
    params = core.read_namespaced_config_map("opsbook-cluster-inventory-params", ns).data["params.yaml"]
    mount = tmp_path / "etc-opsbook"
    mount.mkdir()
    (mount / "params.yaml").write_text(params)
    reports = tmp_path / "reports"
    args = [a.replace("/etc/opsbook", str(mount)).replace("/reports", str(reports)) for a in container.args]
    env = dict(os.environ, **{e.name: e.value for e in container.env or []})
    r = opsbook(*args, env=env)
    assert r.returncode == 0, r.stderr
    [summary_path] = (reports / "cluster-inventory").glob("*.json")
    summary = json.loads(summary_path.read_text())
    assert summary["parameters"]["not_joined_severity"] == "medium"
    assert summary["records"]["nodes"] >= 4
    assert (reports / "index.html").exists()

    listed = opsbook("schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [s for s in json.loads(listed.stdout) if s["namespace"] == ns]
    assert [(s["runbook"], s["schedule"], s["time_zone"]) for s in mine] == [
        ("cluster-inventory", "0 9 * * MON-FRI", "Europe/Berlin")
    ]
    assert len(mine[0]["next_runs"]) == 3

    gone = opsbook("schedule", "delete", "cluster-inventory", "--namespace", ns)
    assert gone.returncode == 0, gone.stderr
    assert f"deleted Job/{job_name}" in gone.stdout
    assert _gone(batch.read_namespaced_cron_job, "opsbook-cluster-inventory", ns)
    assert _gone(core.read_namespaced_config_map, "opsbook-cluster-inventory-params", ns)
    assert _gone(core.read_namespaced_service_account, "opsbook-runner", ns)
    assert _gone(rbac.read_cluster_role_binding, f"opsbook-runner-{ns}")
    remaining = batch.list_cron_job_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=opsbook").items
    if not remaining:
        assert _gone(rbac.read_cluster_role, "opsbook-readonly")
    namespace = _read(core, ns)
    assert namespace is None or namespace.status.phase == "Terminating"


def _read(core: k8s.CoreV1Api, ns: str) -> k8s.V1Namespace | None:
    try:
        return core.read_namespace(ns)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def test_render_after_yaml_roundtrip_has_the_cluster_role() -> None:
    r = opsbook("schedule", "render", "validate-cluster", "--cron", "@daily", "--output", "s3://b/p")
    assert r.returncode == 0, r.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout)]
    assert kinds[0] == "ClusterRole" and "CronJob" in kinds
