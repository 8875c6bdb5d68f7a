"""upgrade-cluster on the sandbox: bad input, preflight, dry run, a real rolling update with the
availability probe, resuming after a stop, and the PDB drill.

The sandbox is made one minor older first (what its kubelets and kube-apiserver pods report), then
upgraded back to its own version; the fixture restores it whatever happens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from kubernetes import client as k8s
from typer.testing import CliRunner

from k8s_helpers import deployment, wait_until
from opsbook.cli import app
from opsbook.k8s.upgrade import NOTE
from opsbook.runbooks import upgrade_cluster as up
from opsbook.sandbox import Sandbox, drills, upgrade_drills

pytestmark = [pytest.mark.sandbox, pytest.mark.private_sandbox]


def _version(sandbox: Sandbox) -> str:
    st = sandbox.state()
    assert st is not None
    return str(st.spec["kubernetes_version"])


@pytest.fixture
def older(sandbox: Sandbox, api: k8s.ApiClient) -> Iterator[str]:
    """The sandbox reports one minor older; afterwards every node reports the sandbox's version again."""
    version = _version(sandbox)
    old = upgrade_drills.older_version(version)
    upgrade_drills.set_cluster_version(api, old)
    yield old
    upgrade_drills.finish_or_uncordon(sandbox, api)
    upgrade_drills.set_cluster_version(api, version, only_at=old)


def _kubelets(api: k8s.ApiClient) -> dict[str, str]:
    return {n.metadata.name: n.status.node_info.kubelet_version for n in k8s.CoreV1Api(api).list_node().items}


def _params(sandbox: Sandbox, **over: object) -> up.Params:
    kw: dict[str, object] = dict(target_version=_version(sandbox), provider="sandbox", sandbox_name=sandbox.name,
                                 drain_timeout=20, validation_timeout=60)
    kw.update(over)
    return up.check_parameters(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("target", "group", "message"), [
    ("1.20.0", "", "older than the cluster's control plane"),
    ("1.99.0", "", "minors ahead of the control plane"),
    ("", "nodes-nowhere", "no instance group 'nodes-nowhere'"),
])
def test_bad_input_exits_2_before_anything_runs(sandbox: Sandbox, api: k8s.ApiClient, older: str, tmp_path: Path,
                                                target: str, group: str, message: str) -> None:
    before = _kubelets(api)
    args = ["run", "upgrade-cluster", "-p", "provider=sandbox", "-p", "apply=true",
            "-p", f"target_version={target or older}", "--sandbox", sandbox.name, "--output", str(tmp_path)]
    if group:
        args += ["-p", f"instance_groups={group}"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not any(tmp_path.iterdir())  # no report: the kernel never started
    assert _kubelets(api) == before


def test_preflight_reports_a_removed_api_in_last_applied(sandbox: Sandbox, api: k8s.ApiClient, namespace: str,
                                                         older: str) -> None:
    applied = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "legacy", "namespace": namespace},
               "spec": {"minAvailable": 0, "selector": {"matchLabels": {"app": "legacy"}}}}
    k8s.PolicyV1Api(api).create_namespaced_pod_disruption_budget(namespace, k8s.V1PodDisruptionBudget(
        metadata=k8s.V1ObjectMeta(name="legacy", annotations={
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}),
        spec=k8s.V1PodDisruptionBudgetSpec(min_available=0,
                                           selector=k8s.V1LabelSelector(match_labels={"app": "legacy"}))))
    p = _params(sandbox)
    assert p.control_plane == older and str(p.target) == _version(sandbox)
    pre = up.preflight(p)
    hit = [f for f in pre.findings if f.object == f"poddisruptionbudget/{namespace}/legacy"]
    assert [(f.check, f.severity, f.data["replacement"]) for f in hit] == [
        ("upgrade.api.removed", "high", "policy/v1")]
    assert "removed in Kubernetes 1.25" in hit[0].message
    assert pre.nodes["kubelet_version"].eq(f"v{older}").all()


def test_dry_run_then_apply_then_resume(sandbox: Sandbox, api: k8s.ApiClient, namespace: str, older: str) -> None:
    apps, policy, core = k8s.AppsV1Api(api), k8s.PolicyV1Api(api), k8s.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("web", 3))
    policy.create_namespaced_pod_disruption_budget(namespace, k8s.V1PodDisruptionBudget(
        metadata=k8s.V1ObjectMeta(name="web"),
        spec=k8s.V1PodDisruptionBudgetSpec(min_available=2, selector=k8s.V1LabelSelector(
            match_labels={"app": "web"}))))
    apps.create_namespaced_deployment(namespace, deployment("solo", 1))
    wait_until(lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 3
               and (apps.read_namespaced_deployment("solo", namespace).status.ready_replicas or 0) == 1,
               60, "web and solo ready")
    wait_until(lambda: (policy.read_namespaced_pod_disruption_budget("web", namespace).status
                        .disruptions_allowed or 0) == 1, 30, "the web PDB to allow one disruption")
    original = _kubelets(api)
    target = f"v{_version(sandbox)}"

    # dry run: lists every node, control plane first, changes nothing
    p = _params(sandbox)
    pre = up.preflight(p)
    the_plan = up.plan(p, pre)
    dry = up.apply(p, the_plan, say=lambda m: None)
    assert dry.action == "dry-run"
    assert set(dry.steps["node"]) == set(original) and dry.steps.iloc[0]["role"] == "control-plane"
    assert _kubelets(api) == original
    assert not any(n.spec.unschedulable for n in core.list_node().items)

    # apply, stopping after two nodes (a stop in the middle)
    first = up.apply(_params(sandbox, apply=True, max_nodes=2), the_plan, say=print)
    assert first.action == "done", first.message
    done1 = list(first.steps["node"])
    assert done1 == list(dry.steps["node"][:2])
    now = _kubelets(api)
    assert not set(done1) & set(now)  # replaced nodes are gone
    assert sorted(v for n, v in now.items() if n in original) == [f"v{older}"] * (len(original) - 2)

    # re-run: finishes the remaining nodes only
    second = up.apply(_params(sandbox, apply=True), the_plan, say=print)
    assert second.action == "done", second.message
    assert set(second.steps["node"]) == set(original) - set(done1)
    final = _kubelets(api)
    assert set(final.values()) == {target} and not set(final) & set(original)
    assert len(final) == len(original)
    assert not any(n.spec.unschedulable for n in core.list_node().items)

    # availability, from the probe's samples of both runs
    samples = pd.concat([first.samples, second.samples])
    web = samples[samples["workload"] == f"deployment/{namespace}/web"]
    solo = samples[samples["workload"] == f"deployment/{namespace}/solo"]
    assert len(web) > 10 and web["ready"].min() >= 2  # never below the PDB
    for run in (first, second):  # each run's first sample already sees every pod
        assert run.samples[run.samples["workload"] == f"deployment/{namespace}/web"].iloc[0]["ready"] == 3
    assert solo["ready"].min() == 0  # the single replica went down when its node drained
    avail = pd.concat([first.availability, second.availability]).groupby("workload").agg(
        min_ready=("min_ready", "min"), zero_ready_s=("zero_ready_s", "sum"))
    assert avail.loc[f"deployment/{namespace}/web", "min_ready"] >= 2
    assert avail.loc[f"deployment/{namespace}/solo", "zero_ready_s"] > 0
    checks = {(f.check, f.object) for f in first.findings + second.findings}
    assert ("upgrade.availability.single-replica-down", f"deployment/{namespace}/solo") in checks
    assert not any(c == "upgrade.availability.down" and o.startswith(f"deployment/{namespace}/") for c, o in checks)
    print("solo downtime s:", avail.loc[f"deployment/{namespace}/solo", "zero_ready_s"],
          "steps:", pd.concat([first.steps, second.steps])[["node", "evicted", "drain_s", "join_s",
                                                              "validate_s"]].to_dict("records"))


def test_pdb_drill_stops_naming_the_pdb(sandbox: Sandbox, api: k8s.ApiClient, tmp_path: Path) -> None:
    core = k8s.CoreV1Api(api)
    had_taxi = drills.NAMESPACE in {n.metadata.name for n in core.list_namespace().items}
    drills.reset(sandbox, api)
    try:
        result = drills.run_drill("upgrade-blocked-by-pdb", sandbox, api)
        apps = k8s.AppsV1Api(api)
        wait_until(lambda: (apps.read_namespaced_deployment("ledger", drills.NAMESPACE).status.ready_replicas
                            or 0) == 2, 60, "ledger ready")
        res = CliRunner().invoke(app, [
            "run", "upgrade-cluster", "-p", "provider=sandbox", "-p", "apply=true",
            "-p", f"target_version={result.details['version']}", "-p", "drain_timeout=5",
            "-p", "validation_timeout=60", "--sandbox", sandbox.name, "--output", str(tmp_path), "--quiet"])
        assert res.exit_code == 1, res.output  # high findings, not an execution error
        summary = json.loads(next((tmp_path / "upgrade-cluster").glob("*.json")).read_text())
        rec = summary["records"]["apply"]
        assert rec["action"] == "stopped"
        stopped = [f for f in summary["findings"] if f["check"] == "upgrade.apply.stopped"]
        assert len(stopped) == 1 and "taxi/ledger" in stopped[0]["message"]
        assert stopped[0]["data"]["pdbs"] == ["taxi/ledger"]
        assert any(f["check"] == "upgrade.drain.pdb-blocks" and f["object"] == "pdb/taxi/ledger"
                   for f in summary["findings"])  # the preflight said so first
        # nothing cordoned without a note; the stopped node carries one naming the PDB
        cordoned = {n.metadata.name: (n.metadata.annotations or {}).get(NOTE, "")
                    for n in k8s.CoreV1Api(api).list_node().items if n.spec.unschedulable}
        assert len(cordoned) == 1 and all("taxi/ledger" in note for note in cordoned.values())
        assert rec["left_cordoned"] == cordoned
    finally:
        undone = drills.reset(sandbox, api)
        print("reset:", undone)
    nodes = k8s.CoreV1Api(api).list_node().items
    assert not any(n.spec.unschedulable for n in nodes)
    assert {n.status.node_info.kubelet_version for n in nodes} == {f"v{_version(sandbox)}"}
    assert "ledger" not in {d.metadata.name for d in k8s.AppsV1Api(api).list_namespaced_deployment(
        drills.NAMESPACE).items}
    if not had_taxi:  # the drill's demo workloads are not part of the baseline later tests validate
        core.delete_namespace(drills.NAMESPACE)
        wait_until(lambda: drills.NAMESPACE not in {n.metadata.name for n in core.list_namespace().items},
                   90, "namespace taxi gone")
