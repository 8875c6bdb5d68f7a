"""Cluster identity: two kube contexts and two profiles give two identities side by side in one index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]


def opsbook(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsbook.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)  # fmt: skip


def test_two_contexts_two_identities_in_one_index(sandbox: Sandbox, tmp_path: Path) -> None:
    st = sandbox.state()
    assert st is not None
    cfg = yaml.safe_load(Path(st.kubeconfig).read_text())
    ctx = cfg["contexts"][0]["context"]
    cfg["contexts"] = [{"name": "devtest", "context": ctx}, {"name": "prod", "context": ctx}]
    cfg["current-context"] = "devtest"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(cfg))
    server = cfg["clusters"][0]["cluster"]["server"]
    profiles = {}
    for name, cluster in (("devtest", "devtest.k8s.local"), ("prod", "prod.example.com")):
        profiles[name] = tmp_path / f"{name}.yaml"
        # state_store is for validate-cluster; cluster-inventory does not declare it: skipped and listed
        profiles[name].write_text(yaml.safe_dump({"cluster_name": cluster, "state_store": "s3://kops-state"}))
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    env.pop("KOPS_CLUSTER_NAME", None)
    out = tmp_path / "reports"
    for name in ("devtest", "prod"):
        r = opsbook("run", "cluster-inventory", "-f", str(profiles[name]), "--context", name, "--output", str(out),
                    env=env)  # fmt: skip
        assert r.returncode in (0, 1), r.stderr
        assert "profile keys not used by cluster-inventory: state_store" in r.stderr
    index = json.loads((out / "index.json").read_text())["runs"]
    ids = sorted((e["cluster"]["cluster_name"], e["cluster"]["context"], e["cluster"]["api_server"],
                  e["cluster"]["aws_account"]) for e in index)  # fmt: skip
    assert ids == [
        ("devtest.k8s.local", "devtest", server, "123456789012"),
        ("prod.example.com", "prod", server, "123456789012"),
    ]
    summaries = [json.loads(p.read_text()) for p in (out / "cluster-inventory").glob("*.json")]
    assert {s["cluster"]["context"] for s in summaries} == {"devtest", "prod"}
    assert all("state_store" not in s["parameters"] for s in summaries)
    page = (out / "index.html").read_text()
    assert '<option value="devtest.k8s.local">' in page and '<option value="prod.example.com">' in page
    listed = opsbook("reports", "list", "--output", str(out), "--cluster", "prod", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [e["cluster"]["cluster_name"] for e in json.loads(listed.stdout)] == ["prod.example.com"]


def test_unknown_context_is_bad_input(sandbox: Sandbox, tmp_path: Path) -> None:
    r = opsbook("run", "cluster-inventory", "--context", "nope", "--output", str(tmp_path), env=dict(os.environ))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Known contexts" in r.stderr
