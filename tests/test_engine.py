"""`opsbook run` end to end against the sandbox: reports, S3 output, failures, secrets, schedules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import nbformat
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s

from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]
TEST_NOTEBOOKS = ROOT / "tests" / "notebooks"


def opsbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsbook.cli", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=600,
        cwd=ROOT,
    )


def test_run_inventory_writes_notebook_html_json(sandbox: Sandbox, tmp_path: Path) -> None:
    r = opsbook("run", "cluster-inventory", "-p", "not_joined_severity=medium", "--output", str(tmp_path))
    assert r.returncode == 0, r.stderr
    runs = sorted((tmp_path / "cluster-inventory").glob("*.json"))
    assert len(runs) == 1
    summary = json.loads(runs[0].read_text())
    assert summary["status"] == "ok" and summary["exit_code"] == 0
    # cluster_name and region come from KOPS_CLUSTER_NAME/AWS_REGION (the sandbox's), and are recorded
    assert summary["parameters"] == {
        "not_joined_severity": "medium",
        "cluster_name": sandbox.state().cluster_name,  # type: ignore[union-attr]
        "region": os.environ["AWS_REGION"],
    }
    assert summary["cluster"]["cluster_name"] == summary["parameters"]["cluster_name"]
    assert summary["cluster"]["aws_account"] == "123456789012"  # moto's account, via STS
    assert summary["cluster"]["api_server"].startswith("https://")
    assert summary["records"]["nodes"] == summary["records"]["instances"] >= 4
    assert summary["records"]["mismatches"] == 0
    html = runs[0].with_suffix(".html").read_text()
    assert "cluster-inventory" in html and "<img" in html  # the plot is in the report
    assert "from opsbook.runbooks import" not in html  # no code cells
    nb = nbformat.read(runs[0].with_suffix(".ipynb"), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    index = (tmp_path / "index.html").read_text()
    assert summary["run_id"] in index


def test_second_run_keeps_the_first_and_index_is_newest_first(sandbox: Sandbox, tmp_path: Path) -> None:
    for _ in range(2):
        assert opsbook("run", "cluster-inventory", "--output", str(tmp_path)).returncode == 0
        time.sleep(1.1)
    runs = sorted((tmp_path / "cluster-inventory").glob("*.json"))
    assert len(runs) == 2
    index = (tmp_path / "index.html").read_text()
    first, second = (json.loads(p.read_text())["run_id"] for p in runs)
    assert index.index(second) < index.index(first)


def test_output_to_s3_lands_in_the_moto_bucket(sandbox: Sandbox) -> None:
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    r = opsbook("run", "cluster-inventory", "--output", f"s3://{bucket}/opsbook")
    assert r.returncode == 0, r.stderr
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert "opsbook/index.html" in keys
    assert {k.rsplit(".", 1)[1] for k in keys if k.startswith("opsbook/cluster-inventory/")} == {
        "ipynb",
        "html",
        "json",
    }
    summary_key = next(k for k in keys if k.endswith(".json"))
    summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read())
    assert summary["status"] == "ok" and summary["records"]["nodes"] >= 4


def test_failing_notebook_exits_3_and_names_the_step(sandbox: Sandbox, tmp_path: Path) -> None:
    r = opsbook("run", str(TEST_NOTEBOOKS / "failing.ipynb"), "--output", str(tmp_path))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Divide the work" in r.stderr
    summary = json.loads(next((tmp_path / "failing").glob("*.json")).read_text())
    assert summary["status"] == "failed"
    assert summary["failed_step"] == "Divide the work"
    assert "ZeroDivisionError" in summary["error"]
    html = next((tmp_path / "failing").glob("*.html")).read_text()
    assert "Failed at step “Divide the work”." in html
    assert "unreachable" not in html


def test_findings_at_fail_on_exit_1(sandbox: Sandbox, tmp_path: Path) -> None:
    env = dict(os.environ, LEAK_PEM_FILE=str(tmp_path / "none.pem"), GITHUB_TOKEN="ghp_" + "x" * 36)
    (tmp_path / "none.pem").write_text("nothing\n")
    r = opsbook(
        "run",
        str(TEST_NOTEBOOKS / "leaky.ipynb"),
        "--output",
        str(tmp_path / "r"),
        "--fail-on",
        "low",
        env=env,
    )
    assert r.returncode == 1, r.stderr
    r = opsbook(
        "run",
        str(TEST_NOTEBOOKS / "leaky.ipynb"),
        "--output",
        str(tmp_path / "r"),
        "--fail-on",
        "medium",
        env=env,
    )
    assert r.returncode == 0, r.stderr


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push.example.com")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_planted_secrets_never_reach_any_saved_byte(sandbox: Sandbox, tmp_path: Path) -> None:
    key_pem, cert_pem = _pem_pair()
    pem_file = tmp_path / "leak.pem"
    pem_file.write_text(key_pem + cert_pem)
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    token = "ghp_" + uuid.uuid4().hex + "abcd"
    session = "FwoGZXIvYXdzEJr" + uuid.uuid4().hex
    env = dict(
        os.environ,
        AWS_SECRET_ACCESS_KEY=secret,
        GITHUB_TOKEN=token,
        AWS_SESSION_TOKEN=session,
        LEAK_PEM_FILE=str(pem_file),
    )
    out = tmp_path / "reports"
    r = opsbook("run", str(TEST_NOTEBOOKS / "leaky.ipynb"), "--output", str(out), "-p", "note=hi", env=env)
    assert r.returncode == 0, r.stderr
    key_body = key_pem.splitlines()[5]
    cert_body = cert_pem.splitlines()[5]
    saved = list(out.rglob("*"))
    # ipynb, html, json, index.html, index.json (+ the hidden .index.lock)
    assert len([p for p in saved if p.is_file() and not p.name.startswith(".")]) == 5
    for path in saved:
        if path.is_file():
            data = path.read_bytes()
            for planted in (secret, token, session, key_body, cert_body, "BEGIN RSA PRIVATE KEY"):
                assert planted.encode() not in data, f"{planted[:12]}... leaked into {path.name}"
    summary = json.loads(next(out.glob("leaky/*.json")).read_text())
    assert "REDACTED" in summary["findings"][0]["message"]  # the finding was kept, its token scrubbed


def test_schedule_renders_a_cronjob_the_api_server_accepts(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    r = opsbook(
        "schedule",
        "render",
        "cluster-inventory",
        "--cron",
        "*/10 * * * *",
        "--output",
        "s3://reports/opsbook",
        "-p",
        "not_joined_severity=high",
    )
    assert r.returncode == 0, r.stderr
    assert "concurrencyPolicy: Forbid" in r.stdout
    r = opsbook(
        "schedule", "apply", "cluster-inventory", "--cron", "*/10 * * * *", "--output", "s3://reports/opsbook"
    )
    assert r.returncode == 0, r.stderr
    batch = k8s.BatchV1Api(api)
    cj = batch.read_namespaced_cron_job("opsbook-cluster-inventory", "opsbook")
    assert cj.spec.concurrency_policy == "Forbid" and cj.spec.schedule == "*/10 * * * *"
    # `kubectl create job --from=cronjob/...` with the kubectl we built
    kubectl = os.environ["OPSBOOK_KUBECTL"]
    job = f"manual-{uuid.uuid4().hex[:6]}"
    out = subprocess.run(
        [kubectl, "-n", "opsbook", "create", "job", job, "--from=cronjob/opsbook-cluster-inventory"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + 60
    pods: list[k8s.V1Pod] = []
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod("opsbook", label_selector=f"job-name={job}").items
        if pods and pods[0].spec.node_name:
            break
        time.sleep(0.5)
    assert pods and pods[0].spec.node_name, "the Job's pod was never scheduled"
    assert pods[0].spec.service_account_name == "opsbook-runner"
    # applying again is safe
    assert (
        opsbook(
            "schedule",
            "apply",
            "cluster-inventory",
            "--cron",
            "*/10 * * * *",
            "--output",
            "s3://reports/opsbook",
        ).returncode
        == 0
    )


def test_schedule_rejects_a_bad_cron(sandbox: Sandbox) -> None:
    r = opsbook(
        "schedule", "render", "cluster-inventory", "--cron", "every ten minutes", "--output", "s3://b/p"
    )
    assert r.returncode == 2
    assert "five-field cron" in r.stderr
