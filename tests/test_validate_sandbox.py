"""validate-cluster against the real sandbox: a healthy cluster passes, each broken state is caught.

Broken states are made the way they happen: a node's heartbeat stops (kwok stops
renewing its Lease), an ASG's desired capacity rises above the nodes (moto
launches an instance that never joins), pod statuses are patched through the
status subresource as a kubelet would write them.

kwok and patched pod status: kwok's pod Stages select Pending pods (``pod-ready``),
pods being deleted, and pods left NotReady by their node's absence
(``pod-ready-again``: Ready False without a reason, containers ready). A status
patch a kubelet would write for a container that is not ready (CrashLoopBackOff,
ImagePullBackOff, a failing readiness probe) sticks, even across a kwok restart
(``tests/test_sandbox_fidelity.py``).

Tests that break a node leave the cluster settled (``faults.wait_settled``), and
tests that need a healthy cluster wait for it (bounded) rather than assume it.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import nbformat
import papermill as pm
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from k8s_helpers import wait_until as _wait
from opsbook.analysis import validate as v
from opsbook.runbooks import validate_cluster as vc
from opsbook.sandbox import Sandbox, faults
from test_validate_unit import make_cert

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "validate-cluster.ipynb"
RBAC = ROOT / "deploy" / "rbac-readonly.yaml"
NO_STORE = "kops.instancegroup.missing"  # noted when no state store is given




def _validate(api: k8s.ApiClient, **kw: Any) -> v.ValidationRun:
    return vc.validate_cluster(api=api, **kw)


def _found(run: v.ValidationRun) -> dict[tuple[str, str], str]:
    f = run.last.findings
    return dict(zip(zip(f["check"], f["object"], strict=True), f["severity"], strict=True))


def _pod(name: str, priority_class: str | None = None, image: str = "example/app:1.0") -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels={"app": name}),
        spec=k8s.V1PodSpec(
            priority_class_name=priority_class,
            containers=[
                k8s.V1Container(
                    name="app",
                    image=image,
                    resources=k8s.V1ResourceRequirements(
                        requests={"cpu": "10m", "memory": "16Mi"}, limits={"memory": "32Mi"}
                    ),
                )
            ],
        ),
    )


def _running_pod(core: k8s.CoreV1Api, ns: str, body: k8s.V1Pod) -> k8s.V1Pod:
    core.create_namespaced_pod(ns, body)
    return _wait(
        lambda: (
            (p := core.read_namespaced_pod(body.metadata.name, ns)).status.phase == "Running"
            and p.status.pod_ip
            and p
        ),
        60,
        f"pod {body.metadata.name} Running",
    )


def _kubelet_status(
    core: k8s.CoreV1Api,
    ns: str,
    name: str,
    waiting: str | None,
    restarts: int = 0,
    oom: bool = False,
    message: str = "",
) -> None:
    """Write the pod's status as a kubelet would for a container that is not ready."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod = core.read_namespaced_pod(name, ns)
    state = (
        {"waiting": {"reason": waiting, "message": message}} if waiting else {"running": {"startedAt": now}}
    )
    cs: dict[str, Any] = {
        "name": "app",
        "image": pod.spec.containers[0].image,
        "imageID": "",
        "ready": False,
        "restartCount": restarts,
        "started": not waiting,
        "state": state,
    }
    if oom:
        cs["lastState"] = {
            "terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": now, "finishedAt": now}
        }
    conds = [
        {"type": t, "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now}
        for t in ("Ready", "ContainersReady")
    ]
    core.patch_namespaced_pod_status(name, ns, {"status": {"conditions": conds, "containerStatuses": [cs]}})


def _node_ready(core: k8s.CoreV1Api, name: str) -> str:
    return next(c.status for c in core.read_node(name).status.conditions if c.type == "Ready")


@pytest.fixture
def healthy(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    """Start from a cluster that validates (after earlier fault tests in the session)."""

    faults.wait_settled(api, 90)
    _wait(lambda: _validate(api).passed, 120, "the sandbox to validate again", interval=2)


# -- healthy + least privilege ----------------------------------------------------------------------


def test_healthy_sandbox_passes(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    faults.wait_settled(api, 90)  # an earlier test's node fault may still be settling
    run = _validate(api)
    last = run.last
    f = last.findings
    bad = f[f["severity"].isin(["medium", "high", "critical"])]
    assert bad.empty, "a healthy sandbox has findings:\n" + bad[["severity", "check", "object", "message"]].to_string()
    assert last.kops_failures == 0, last.kops.failures
    # without a state store the groups come from the ASGs' tags: a group whose ASG is gone is not seen
    assert list(last.notes["check"]) == ["kops.instancegroup.missing"], last.notes.to_string()
    # kops parity really looked at everything: 4 IGs from the ASGs, 4 instances, 1 control-plane node
    ev = last.evaluations.groupby("check").size()
    assert ev["kops.instancegroup.size"] == 4 and ev["kops.instance.joined"] == 4
    assert ev["kops.controlplane.components"] == 1 and ev["kops.node.ready"] == 4
    assert last.kops_passed and sorted(last.kops.nodes["role"]) == ["control-plane", "node", "node", "node"]
    assert ev["kops.pod.system_critical"] >= 6  # 4 static pods + 2 coredns
    assert set(last.inputs.targets["source"]) == {"asg"}
    assert ev["certs.apiserver"] == 1 and ev["certs.expiry"] >= 1  # kube-root-ca.crt
    assert last.inputs.snapshot.requests == 8  # one page per kind
    assert run.summary()["status"] == "PASS"


@pytest.fixture
def readonly_api(sandbox: Sandbox, api: k8s.ApiClient) -> Iterator[k8s.ApiClient]:
    """An ApiClient authenticated as opsbook/opsbook-runner, bound only to deploy/rbac-readonly.yaml."""
    rbac = k8s.RbacAuthorizationV1Api(api)
    core = k8s.CoreV1Api(api)
    for doc in yaml.safe_load_all(RBAC.read_text()):
        kind, name = doc["kind"], doc["metadata"]["name"]
        create = {
            "Namespace": lambda d: core.create_namespace(d),
            "ServiceAccount": lambda d: core.create_namespaced_service_account("opsbook", d),
            "ClusterRole": lambda d: rbac.create_cluster_role(d),
            "ClusterRoleBinding": lambda d: rbac.create_cluster_role_binding(d),
        }[kind]
        try:
            create(doc)
        except ApiException as e:
            if e.status != 409:
                raise
            if kind == "ClusterRole":
                rbac.replace_cluster_role(name, doc)
    token = core.create_namespaced_service_account_token(
        "opsbook-runner",
        "opsbook",
        k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)),
    ).status.token
    cfg = k8s.Configuration()
    cfg.host = api.configuration.host
    cfg.ssl_ca_cert = api.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    client = k8s.ApiClient(cfg)
    client.token = token  # for kubeconfig files
    yield client
    client.close()


def test_readonly_role_is_read_only(readonly_api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(readonly_api)
    assert core.list_node().items
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="x")))
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        core.patch_node(core.list_node().items[0].metadata.name, {"metadata": {"labels": {"x": "y"}}})
    assert e.value.status == 403


def test_passes_under_readonly_service_account(
    healthy: None, readonly_api: k8s.ApiClient, api: k8s.ApiClient
) -> None:
    run = _validate(readonly_api)
    # no state store given: the instance groups come from the ASGs' tags (the only note)
    assert run.passed and list(run.last.notes["check"]) == [NO_STORE], run.last.notes.to_string()
    assert run.last.evaluations.groupby("check").size()["certs.expiry"] >= 1
    # without the optional secrets grant the certificate check degrades, the run still passes
    rbac = k8s.RbacAuthorizationV1Api(api)
    binding = rbac.read_cluster_role_binding("opsbook-runner-certs")
    rbac.delete_cluster_role_binding("opsbook-runner-certs")
    try:

        def degraded() -> v.ValidationRun | None:
            r = _validate(readonly_api)
            return r if len(r.last.notes) > 1 else None

        run = _wait(degraded, 30, "secrets to become forbidden")
        assert run.passed
        assert list(run.last.notes["check"]) == ["certs.expiry", NO_STORE]
        assert "secrets" in run.last.notes["note"].iloc[0] and "forbidden" in run.last.notes["note"].iloc[0]
        assert any(f.check == "certs.expiry" and f.data.get("degraded") for f in v.validate_findings(run))
    finally:
        binding.metadata.resource_version = None
        rbac.create_cluster_role_binding(binding)


@pytest.mark.notebook
def test_notebook_passes_under_readonly_service_account(
    healthy: None, readonly_api: k8s.ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "runner.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "runner",
                "clusters": [
                    {
                        "name": "sandbox",
                        "cluster": {
                            "server": readonly_api.configuration.host,
                            "certificate-authority": readonly_api.configuration.ssl_ca_cert,
                        },
                    }
                ],
                "users": [{"name": "opsbook-runner", "user": {"token": readonly_api.token}}],
                "contexts": [{"name": "runner", "context": {"cluster": "sandbox", "user": "opsbook-runner"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # the kernel inherits it
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"exclude": ["check:nodes.burstable"]},
        kernel_name="python3",
        progress_bar=False,
        start_timeout=300,
    )
    nb = nbformat.read(out, as_version=4)
    metas = [
        o.get("metadata", {}).get("opsbook", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    ]
    summary = next(m["record"]["validation"] for m in metas if "validation" in m.get("record", {}))
    assert summary["status"] == "PASS" and summary["kops_failures"] == 0
    assert summary["excluded"] == 4  # the burstable check evaluated on all four nodes
    findings = next(m["findings"] for m in metas if "findings" in m)
    assert not any(f["severity"] in ("high", "critical") for f in findings)
    assert (
        sum(
            1
            for c in nb.cells
            if c.cell_type == "code" and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
        )
        == 3  # score, node readiness, pods by phase
    )


# -- broken states ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_node_not_ready_is_caught(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    victim = sorted(n.metadata.name for n in core.list_node(label_selector="kubernetes.io/role=node").items)[
        -1
    ]
    try:
        faults.stop_heartbeat(sandbox, api, victim)
        _wait(lambda: _node_ready(core, victim) != "True", 90, "node NotReady")
        others = [n.metadata.name for n in core.list_node().items if n.metadata.name != victim]
        _wait(lambda: all(_node_ready(core, n) == "True" for n in others), 60, "the other nodes Ready")
        run = _validate(api)
        found = _found(run)
        assert found[("kops.node.ready", f"node/{victim}")] == "high"
        # kops counts the group's cloud instances (all there), not its Ready nodes: no size failure
        ig = core.read_node(victim).metadata.labels["kops.k8s.io/instancegroup"]
        assert ("kops.instancegroup.size", f"instancegroup/{ig}") not in found
        assert not run.passed and run.last.kops.keys() == [("Node", victim)]
        # opsbook's max_unready_nodes policy (beyond kops) tolerates one NotReady worker; kops still fails
        tolerant = _validate(api, max_unready_nodes=1)
        assert _found(tolerant)[("kops.node.ready", f"node/{victim}")] == "low"
        assert tolerant.last.tolerated == [victim] and not tolerant.last.kops_passed
        assert tolerant.last.kops.keys() == [("Node", victim)]  # kops' verdict is never softened
    finally:
        faults.resume_heartbeat(sandbox, api, victim)
        faults.wait_settled(api, 90)


def test_instance_group_below_target_is_caught(healthy: None, sandbox: Sandbox, api: k8s.ApiClient) -> None:
    st = sandbox.state()
    ig = "nodes-eu-central-1a"
    name = f"{ig}.{st.cluster_name}"
    asg = boto3.client("autoscaling", region_name=st.region)
    before = {
        i["InstanceId"]
        for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
            "Instances"
        ]
    }
    asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=2, DesiredCapacity=2)
    try:
        new = {
            i["InstanceId"]
            for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
                "Instances"
            ]
        } - before
        assert len(new) == 1
        run = _validate(api)
        found = _found(run)
        # kops: 2 cloud instances for a desired capacity of 2, one of them has no node
        iid = new.pop()
        assert {k: s for k, s in found.items() if k[0].startswith("kops.")} == {
            ("kops.instance.joined", f"instance/{iid}"): "high"}
        msg = run.last.findings.set_index("object").loc[f"instance/{iid}", "message"]
        assert f'machine "{iid}" has not yet joined cluster' in msg
        assert not run.passed
    finally:
        for iid in {
            i["InstanceId"]
            for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
                "Instances"
            ]
        } - before:
            asg.terminate_instance_in_auto_scaling_group(InstanceId=iid, ShouldDecrementDesiredCapacity=True)
        asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=1, DesiredCapacity=1)
    assert _validate(api).passed


def test_system_critical_pod_not_ready_is_caught(api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    _running_pod(core, namespace, _pod("agent", priority_class="system-node-critical"))
    _kubelet_status(core, namespace, "agent", waiting=None)  # running, readiness probe failing
    run = _validate(api)
    assert _found(run)[("kops.pod.system_critical", f"pod/{namespace}/agent")] == "high"
    assert not run.passed and "kops.pod.system_critical" in run.reason


def test_crashloop_and_image_pull_are_caught_and_stick(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(api)
    _running_pod(core, namespace, _pod("crash"))
    _running_pod(core, namespace, _pod("pull", image="registry.example.com/team/api:1.2"))
    _kubelet_status(
        core,
        namespace,
        "crash",
        "CrashLoopBackOff",
        restarts=7,
        oom=True,
        message="back-off 5m0s restarting failed container=app",
    )
    _kubelet_status(
        core,
        namespace,
        "pull",
        "ImagePullBackOff",
        message='Back-off pulling image "registry.example.com/team/api:1.2"',
    )
    time.sleep(5)  # kwok's pod controller keeps running: the kubelet-written status stays
    assert core.read_namespaced_pod("crash", namespace).status.container_statuses[0].state.waiting.reason == (
        "CrashLoopBackOff"
    )
    found = _found(_validate(api))
    assert found[("workloads.crashloop", f"pod/{namespace}/crash")] == "high"
    assert found[("workloads.restarts", f"pod/{namespace}/crash")] == "medium"
    assert found[("workloads.oomkilled", f"pod/{namespace}/crash")] == "medium"
    assert found[("workloads.image_pull", f"pod/{namespace}/pull")] == "high"


def test_pdb_with_zero_disruptions_and_service_without_endpoints(
    healthy: None, api: k8s.ApiClient, namespace: str
) -> None:
    apps, core, policy = k8s.AppsV1Api(api), k8s.CoreV1Api(api), k8s.PolicyV1Api(api)
    labels = {"app": "db"}
    tpl = k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=_pod("db").spec)
    apps.create_namespaced_deployment(
        namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="db"),
            spec=k8s.V1DeploymentSpec(
                replicas=2, selector=k8s.V1LabelSelector(match_labels=labels), template=tpl
            ),
        ),
    )
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        k8s.V1PodDisruptionBudget(
            metadata=k8s.V1ObjectMeta(name="db"),
            spec=k8s.V1PodDisruptionBudgetSpec(
                min_available=2, selector=k8s.V1LabelSelector(match_labels=labels)
            ),
        ),
    )
    for svc, sel in (("db", labels), ("ghost", {"app": "nothing"})):
        core.create_namespaced_service(
            namespace,
            k8s.V1Service(
                metadata=k8s.V1ObjectMeta(name=svc),
                spec=k8s.V1ServiceSpec(selector=sel, ports=[k8s.V1ServicePort(port=5432)]),
            ),
        )
    _wait(
        lambda: (
            (s := policy.read_namespaced_pod_disruption_budget("db", namespace).status)
            and s.current_healthy == 2
        ),
        60,
        "PDB status from the disruption controller",
    )
    _wait(
        lambda: any(
            e.endpoints
            for e in k8s.DiscoveryV1Api(api)
            .list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=db")
            .items
        ),
        60,
        "endpoints of service db",
    )
    run = _validate(api)
    found = _found(run)
    assert found[("workloads.pdb_blocks_drain", f"pdb/{namespace}/db")] == "medium"
    assert found[("config.service_endpoints", f"service/{namespace}/ghost")] == "medium"
    assert (("config.service_endpoints", f"service/{namespace}/db")) not in found
    assert ("workloads.deployment_available", f"deployment/{namespace}/db") not in found
    assert run.passed  # medium findings do not fail the default fail_on=high...
    assert not _validate(api, fail_on="medium").passed  # ...but do with fail_on=medium
    # and an exclusion removes them from the score and lists them
    clean = _validate(api, exclude=[f"namespace:{namespace}"])
    assert clean.last.score > run.last.score
    assert clean.not_counted().to_dict("records")[0]["findings"] == 2


def test_expiring_certificates_are_caught(api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    now = datetime.now(UTC)
    soon, key = make_cert("push.example.com", now + timedelta(days=3))
    later, _ = make_cert("partner-ca", now + timedelta(days=20))
    gone, _ = make_cert("old.example.com", now - timedelta(days=1))
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    core.create_namespaced_secret(
        namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name="push-tls"),
            type="kubernetes.io/tls",
            data={"tls.crt": b64(soon), "tls.key": b64(key)},
        ),
    )
    core.create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="legacy"), data={"client.pem": b64(gone)})
    )
    core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="partner"), data={"ca.crt": later.decode()})
    )
    run = _validate(api)
    found = _found(run)
    assert found[("certs.expiry", f"secret/{namespace}/push-tls")] == "high"
    assert found[("certs.expiry", f"secret/{namespace}/legacy")] == "critical"
    assert found[("certs.expiry", f"configmap/{namespace}/partner")] == "medium"
    assert not run.passed
    msgs = " ".join(run.last.findings["message"])
    assert "CN=push.example.com" in msgs and "BEGIN" not in msgs  # metadata only, never the PEM


# -- wait / count -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_wait_passes_once_the_node_recovers_after_count_passes(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    victim = sorted(n.metadata.name for n in core.list_node(label_selector="kubernetes.io/role=node").items)[
        0
    ]
    resumed_at: list[float] = []

    def say(line: str) -> None:  # called after every attempt: bring the node back after the first failure
        if "fail" in line and not resumed_at:
            faults.resume_heartbeat(sandbox, api, victim)  # its pods then report Ready by themselves
            resumed_at.append(time.time())

    try:
        faults.stop_heartbeat(sandbox, api, victim)
        _wait(lambda: _node_ready(core, victim) != "True", 90, "node NotReady")
        run = _validate(api, wait=180, count=3, interval=2, say=say)
    finally:
        if not resumed_at:
            faults.resume_heartbeat(sandbox, api, victim)
        faults.wait_settled(api, 90)
    att = run.attempts
    assert run.passed, run.reason
    assert not att["passed"].iloc[0]  # it started while the node was down
    assert list(att["passed"].tail(3)) == [True, True, True]  # stopped right after 3 consecutive passes
    assert len(att) == 3 or not att["passed"].iloc[-4]
    first_pass = att.loc[att["passed"].idxmax(), "at"].timestamp()
    assert first_pass > resumed_at[0]
    assert "3 consecutive" in run.reason


def test_bad_parameters_fail_before_any_call() -> None:
    from opsbook.errors import BadInput

    with pytest.raises(BadInput):
        vc.validate_cluster(api=k8s.ApiClient(), exclude=["kube-system"])
    with pytest.raises(BadInput):
        vc.validate_cluster(api=k8s.ApiClient(), state_store="bucket-without-scheme")
    with pytest.raises(BadInput):
        vc.validate_cluster(api=k8s.ApiClient(), fail_on="info")


def test_state_store_lists_the_groups_and_min_size_is_not_the_target(
    healthy: None, sandbox: Sandbox, api: k8s.ApiClient
) -> None:
    st = sandbox.state()
    s3 = boto3.client("s3", region_name=st.region)
    prefix = f"validate-{uuid.uuid4().hex[:6]}"
    keys = []
    for name, role, size in [("nodes-eu-central-1b", "Node", 2), ("master-eu-central-1a", "Node", 1),
                             ("nodes-eu-central-1a", "Node", 1), ("nodes-eu-central-1c", "Node", 1)]:
        keys.append(f"{prefix}/{st.cluster_name}/instancegroup/{name}")
        s3.put_object(Bucket="opsbook-kops-state", Key=keys[-1], Body=yaml.safe_dump({
            "apiVersion": "kops.k8s.io/v1alpha2", "kind": "InstanceGroup", "metadata": {"name": name},
            "spec": {"role": role, "minSize": size, "maxSize": 3}}))
    try:
        run = _validate(api, state_store=f"s3://opsbook-kops-state/{prefix}")
        # kops compares instances with the ASG's desired capacity (1); minSize 2 is never used
        t = run.targets.set_index("instance_group")
        assert t.loc["nodes-eu-central-1b", "target"] == 1 and t.loc["nodes-eu-central-1b", "source"] == "asg"
        assert run.last.kops_passed, run.last.kops.failures.to_string()
        assert sorted(run.last.inputs.igs["instance_group"]) == sorted(t.index)
        empty = _validate(api, state_store="s3://opsbook-kops-state/nothing-here")
        assert "no instance groups" in empty.last.notes.set_index("check").loc["kops.instancegroup.missing", "note"]
    finally:
        for key in keys:
            s3.delete_object(Bucket="opsbook-kops-state", Key=key)
