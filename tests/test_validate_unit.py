"""Pure parts of validate-cluster: row extraction, checks, score, exclusions, wait/count, certs, plots.

No servers: every expected value below is worked out by hand from the input rows.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from matplotlib.figure import Figure

from opsbook.analysis import certs
from opsbook.analysis import validate as v
from opsbook.aws import asg
from opsbook.errors import BadInput, ClusterUnreachable
from opsbook.k8s import certs as k8s_certs
from opsbook.k8s import inventory as inv
from opsbook.plots import validate as plots

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# -- helpers ----------------------------------------------------------------------------------------


def make_cert(cn: str, not_after: datetime) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def node(
    name: str,
    ig: str,
    ready: str = "True",
    cp: bool = False,
    itype: str = "m5.large",
    iid: str | None = None,
    **status: Any,
) -> dict[str, Any]:
    labels = {
        "kops.k8s.io/instancegroup": ig,
        "node.kubernetes.io/instance-type": itype,
        "topology.kubernetes.io/zone": "eu-central-1a",
    }
    labels["kubernetes.io/hostname"] = name
    if cp:
        labels["node-role.kubernetes.io/control-plane"] = ""
    conds = [{"type": "Ready", "status": ready, "reason": "" if ready == "True" else "NodeStatusUnknown"}]
    conds += [{"type": t, "status": "True"} for t in status.get("pressure", [])]
    if "network_unavailable" in status:
        conds.append({"type": "NetworkUnavailable", "status": status["network_unavailable"]})
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "providerID": f"aws:///eu-central-1a/{iid or 'i-' + name}",
            "unschedulable": status.get("unschedulable", False),
        },
        "status": {"conditions": conds, "addresses": [{"type": "InternalIP", "address": f"ip-{name}"},
                                                      {"type": "Hostname", "address": name}]},
    }


def pod(
    ns: str,
    name: str,
    node_name: str = "n1",
    phase: str = "Running",
    ready: bool = True,
    priority_class: str = "",
    component: str = "",
    waiting: str = "",
    restarts: int = 0,
    oom: bool = False,
    image: str = "app:1.0",
    requests: bool = True,
    owner: tuple[str, str] | None = None,
    created: str = "2026-01-10T11:00:00Z",
    unschedulable: str = "",
) -> dict[str, Any]:
    labels = {"k8s-app": component} if component else {}
    meta: dict[str, Any] = {"namespace": ns, "name": name, "labels": labels, "creationTimestamp": created}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
        if owner[0] == "ReplicaSet":
            labels["pod-template-hash"] = owner[1].rsplit("-", 1)[1]
    res = {"requests": {"cpu": "10m", "memory": "10Mi"}, "limits": {"memory": "20Mi"}} if requests else {}
    cs: dict[str, Any] = {
        "name": "app",
        "restartCount": restarts,
        "ready": ready,
        "state": {"waiting": {"reason": waiting, "message": "back-off"}} if waiting else {"running": {}},
    }
    if oom:
        cs["lastState"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conds.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        )
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node_name,
            "priorityClassName": priority_class or None,
            "containers": [{"name": "app", "image": image, "resources": res}],
        },
        "status": {"phase": phase, "conditions": conds, "containerStatuses": [cs],
                   "hostIP": f"ip-{node_name}" if node_name else None},
    }


def snapshot(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    deployments: list[dict[str, Any]] = (),
    pdbs: list[dict[str, Any]] = (),
    services: list[dict[str, Any]] = (),
    cert_rows: list[dict[str, Any]] = (),
) -> inv.Snapshot:
    return inv.Snapshot(
        nodes=inv._frame([inv.node_row(n) for n in nodes], inv.NODE_COLUMNS, ("created",)),
        pods=inv._frame([inv.pod_row(p) for p in pods], inv.POD_COLUMNS, ("created",)),
        deployments=inv._frame(list(deployments), inv.DEPLOYMENT_COLUMNS),
        pdbs=inv._frame(list(pdbs), inv.PDB_COLUMNS),
        services=inv._frame(list(services), inv.SERVICE_COLUMNS),
        certs=inv._frame(list(cert_rows), inv.CERT_COLUMNS, ("not_after",)),
        taken_at=NOW,
    )


def control_plane_pods(node_name: str) -> list[dict[str, Any]]:
    return [
        pod("kube-system", f"{c}-{node_name}", node_name, priority_class="system-node-critical", component=c)
        for c in v.CONTROL_PLANE_COMPONENTS
    ]


def healthy_inputs() -> v.Inputs:
    nodes = [node("cp1", "master-a", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")]
    pods = [*control_plane_pods("cp1"), pod("default", "web-1", "n1"), pod("default", "web-2", "n2")]
    targets = pd.DataFrame(
        {
            "instance_group": ["master-a", "nodes-a"],
            "target": [1, 2],
            "min_size": [1, 2],
            "max_size": [1, 2],
            "source": "asg",
            "asg": ["master-a.c", "nodes-a.c"],
        }
    )
    instances = pd.DataFrame(
        {
            "instance_id": ["i-cp1", "i-n1", "i-n2"],
            "instance_group": ["master-a"] + 2 * ["nodes-a"],
            "state": "running",
            "private_dns": ["cp1", "n1", "n2"],
            "zone": "eu-central-1a",
            "instance_type": "m5.large",
        }
    )
    return v.Inputs(
        snapshot=snapshot(nodes, pods),
        targets=targets,
        instances=instances,
        apiserver_certs=pd.DataFrame(columns=inv.CERT_COLUMNS),
        igs=pd.DataFrame({"instance_group": ["master-a", "nodes-a"], "role": ["control-plane", "node"],
                          "min_size": [1, 2], "max_size": [1, 2], "asg": ["master-a.masters.c", "nodes-a.c"]}),
        cloud=cloud({"master-a.masters.c": ["i-cp1"], "nodes-a.c": ["i-n1", "i-n2"]}),
    )


def cloud(asgs: dict[str, list[str]], desired: dict[str, int] | None = None,
          states: dict[str, str] | None = None, extra: list[dict[str, Any]] = ()) -> asg.KopsCloud:
    """ASGs (name -> instance ids, desired = len unless given), every instance running and tagged
    with the group the ASG name starts with; ``states`` sets lifecycle states, ``extra`` adds
    EC2 instances (e.g. detached ones)."""
    desired = desired or {}
    states = states or {}
    a = pd.DataFrame([{"asg": n, "desired": desired.get(n, len(ids)), "min_size": 0, "max_size": 9,
                       "status": "", "instance_group": n.split(".")[0], "role": ""} for n, ids in asgs.items()],
                     columns=asg.KOPS_ASG_COLUMNS)
    m = pd.DataFrame([{"asg": n, "instance_id": i, "lifecycle_state": states.get(i, "InService"),
                       "warm": states.get(i, "").startswith("Warmed")} for n, ids in asgs.items() for i in ids],
                     columns=asg.KOPS_MEMBER_COLUMNS)
    inst = pd.DataFrame([{"instance_id": i, "instance_group": n.split(".")[0], "state": "running", "detached": "",
                          "private_dns": i, "zone": "eu-central-1a", "instance_type": "m5.large"}
                         for n, ids in asgs.items() for i in ids] + list(extra),
                        columns=asg.KOPS_INSTANCE_COLUMNS)
    return asg.KopsCloud(asgs=a, members=m, instances=inst)


def checks_of(val: v.Validation, severity: str | None = None) -> set[tuple[str, str]]:
    f = val.findings
    if severity:
        f = f[f["severity"] == severity]
    return set(zip(f["check"], f["object"], strict=True))


# -- rows -------------------------------------------------------------------------------------------


def test_pod_row_reads_kubelet_status_and_owner() -> None:
    row = inv.pod_row(
        pod(
            "shop",
            "api-7d9f-abcde",
            waiting="CrashLoopBackOff",
            restarts=7,
            oom=True,
            ready=False,
            owner=("ReplicaSet", "api-7d9f"),
        )
    )
    assert row["workload"] == "deployment/shop/api"
    assert (row["waiting_reason"], row["restarts"], row["oom_killed"], row["ready"]) == (
        "CrashLoopBackOff",
        7,
        True,
        False,
    )
    assert row["containers"] == (("app", "app:1.0", True, True),)
    mirror = inv.pod_row(pod("kube-system", "kube-apiserver-cp1", owner=("Node", "cp1")))
    assert mirror["workload"] == "pod/kube-system/kube-apiserver-cp1"


def test_node_row_roles_pressure_and_instance_id() -> None:
    row = inv.node_row(
        node("cp1", "master-a", cp=True, iid="i-0abc", pressure=["DiskPressure", "PIDPressure"])
    )
    assert (row["role"], row["instance_id"], row["pressure"]) == (
        "control-plane",
        "i-0abc",
        "DiskPressure,PIDPressure",
    )


def test_endpointslice_counts_ready_unset_as_ready() -> None:
    s = {
        "metadata": {"namespace": "a", "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"conditions": {"ready": True}}, {"conditions": {}}, {"conditions": {"ready": False}}],
    }
    assert inv.ready_endpoints(s) == ("a/web", 2)


# -- kops parity ------------------------------------------------------------------------------------


def test_healthy_cluster_passes_with_full_score() -> None:
    val = v.evaluate(healthy_inputs())
    assert val.passed and val.kops_failures == 0
    assert val.findings.empty
    assert val.score == 100.0


def test_not_ready_worker_fails_and_is_tolerated_by_max_unready_nodes() -> None:
    inputs = healthy_inputs()
    nodes = [node("cp1", "master-a", cp=True), node("n1", "nodes-a", ready="Unknown"), node("n2", "nodes-a")]
    inputs.snapshot = snapshot(nodes, control_plane_pods("cp1"))
    val = v.evaluate(inputs)
    assert not val.passed and not val.kops_passed
    # kops counts cloud instances against the ASG's desired capacity: the group is not short
    assert checks_of(val, "high") == {("kops.node.ready", "node/n1")}
    assert val.kops.keys() == [("Node", "n1")]
    tolerant = v.evaluate(inputs, v.Options(max_unready_nodes=1))
    # opsbook's policy passes the run; kops' verdict is unchanged and still listed
    assert tolerant.passed and not tolerant.kops_passed and tolerant.kops_failures == 1
    assert tolerant.tolerated == ["n1"]
    assert checks_of(tolerant, "low") == {("kops.node.ready", "node/n1")}
    msg = tolerant.findings.set_index("object").loc["node/n1", "message"]
    assert "kops fails this" in msg and "max_unready_nodes=1" in msg and "no such flag" in msg


def test_control_plane_node_is_never_tolerated() -> None:
    inputs = healthy_inputs()
    nodes = [node("cp1", "master-a", ready="False", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")]
    inputs.snapshot = snapshot(nodes, control_plane_pods("cp1"))
    val = v.evaluate(inputs, v.Options(max_unready_nodes=5))
    # a NotReady control-plane node is not looked at for its static pods (kops: ready nodes only)
    assert checks_of(val, "critical") == {("kops.node.ready", "node/cp1")}
    assert not val.passed and val.tolerated == []


def test_missing_control_plane_component_and_unjoined_instance() -> None:
    inputs = healthy_inputs()
    pods = [p for p in control_plane_pods("cp1") if "scheduler" not in p["metadata"]["name"]]
    inputs.snapshot = snapshot(
        [node("cp1", "master-a", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")], pods
    )
    inputs.cloud = cloud({"master-a.masters.c": ["i-cp1"], "nodes-a.c": ["i-n1", "i-n2", "i-new"]},
                         desired={"nodes-a.c": 3})
    val = v.evaluate(inputs)
    assert ("kops.controlplane.components", "node/cp1") in checks_of(val, "critical")
    assert (
        "kube-scheduler"
        in val.findings.loc[val.findings["check"] == "kops.controlplane.components", "message"].iloc[0]
    )
    assert ("kops.instance.joined", "instance/i-new") in checks_of(val, "high")
    assert val.kops.keys() == [("Machine", "i-new"), ("Node", "cp1")]


def test_system_critical_pod_not_ready() -> None:
    inputs = healthy_inputs()
    pods = [
        *control_plane_pods("cp1"),
        pod("kube-system", "coredns-1", "n1", ready=False, priority_class="system-cluster-critical"),
        pod(
            "kube-system", "done", "n1", phase="Succeeded", ready=False, priority_class="system-node-critical"
        ),
    ]
    inputs.snapshot = snapshot(
        [node("cp1", "master-a", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")], pods
    )
    val = v.evaluate(inputs)
    assert checks_of(val, "high") == {("kops.pod.system_critical", "pod/kube-system/coredns-1")}
    assert not val.passed


# -- beyond kops ------------------------------------------------------------------------------------


def test_workload_checks_and_severities() -> None:
    inputs = healthy_inputs()
    pods = [
        *control_plane_pods("cp1"),
        pod("shop", "crash", "n1", ready=False, waiting="CrashLoopBackOff", restarts=7, oom=True),
        pod("shop", "pull", "n1", phase="Pending", ready=False, waiting="ImagePullBackOff", image="shop/api"),
        pod(
            "shop",
            "stuck",
            "",
            phase="Pending",
            ready=False,
            unschedulable="0/3 nodes are available: 3 Insufficient cpu.",
        ),
        pod("shop", "young", "", phase="Pending", ready=False, created="2026-01-10T11:59:30Z"),
        pod("shop", "naked", "n2", image="redis:latest", requests=False),
    ]
    inputs.snapshot = snapshot(
        [
            node("cp1", "master-a", cp=True),
            node("n1", "nodes-a", itype="t3.medium"),
            node("n2", "nodes-a", unschedulable=True, pressure=["MemoryPressure"]),
        ],
        pods,
        deployments=[
            {
                "namespace": "shop",
                "name": "api",
                "object": "deployment/shop/api",
                "desired": 3,
                "available": 1,
                "ready": 1,
                "updated": 3,
            },
            {
                "namespace": "shop",
                "name": "one",
                "object": "deployment/shop/one",
                "desired": 1,
                "available": 0,
                "ready": 0,
                "updated": 1,
            },
        ],
        pdbs=[
            {
                "namespace": "shop",
                "name": "strict",
                "object": "pdb/shop/strict",
                "disruptions_allowed": 0,
                "current_healthy": 2,
                "desired_healthy": 2,
                "expected_pods": 2,
                "min_available": "2",
                "max_unavailable": "",
            }
        ],
        services=[
            {
                "namespace": "shop",
                "name": "ghost",
                "object": "service/shop/ghost",
                "type": "ClusterIP",
                "has_selector": True,
                "ready_endpoints": 0,
            },
            {
                "namespace": "shop",
                "name": "ext",
                "object": "service/shop/ext",
                "type": "ExternalName",
                "has_selector": False,
                "ready_endpoints": 0,
            },
        ],
    )
    val = v.evaluate(inputs)
    got = {
        (c, o): s
        for c, o, s in zip(
            val.findings["check"], val.findings["object"], val.findings["severity"], strict=True
        )
    }
    assert got == {
        ("workloads.crashloop", "pod/shop/crash"): "high",
        ("workloads.restarts", "pod/shop/crash"): "medium",
        ("workloads.oomkilled", "pod/shop/crash"): "medium",
        ("workloads.image_pull", "pod/shop/pull"): "high",
        ("workloads.pending", "pod/shop/pull"): "medium",
        ("workloads.pending", "pod/shop/stuck"): "medium",  # "young" is within the 120 s grace
        ("nodes.pressure", "node/n2"): "high",
        ("nodes.unschedulable", "node/n2"): "low",
        ("nodes.burstable", "node/n1"): "info",
        ("workloads.deployment_available", "deployment/shop/api"): "medium",
        ("workloads.deployment_available", "deployment/shop/one"): "high",
        ("workloads.single_replica", "deployment/shop/one"): "low",
        ("workloads.pdb_blocks_drain", "pdb/shop/strict"): "medium",
        ("config.service_endpoints", "service/shop/ghost"): "medium",
        ("config.resources", "pod/shop/naked"): "low",
        ("config.image_tag", "pod/shop/naked"): "low",
        ("config.image_tag", "pod/shop/pull"): "low",
    }
    stuck = val.findings[val.findings["object"] == "pod/shop/stuck"]["message"].iloc[0]
    assert "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu." in stuck
    assert list(val.findings["severity"].head(4)) == ["high"] * 4  # most severe first
    assert not val.passed and val.kops_failures == 0


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("nginx", "untagged"),
        ("nginx:latest", "latest"),
        ("registry:5000/team/app", "untagged"),
        ("registry:5000/team/app:1.2", ""),
        ("app@sha256:" + "a" * 64, ""),
        ("quay.io/x/y:latest", "latest"),
    ],
)
def test_image_tag_problem(image: str, problem: str) -> None:
    assert v.image_tag_problem(image) == problem


def test_burstable_families() -> None:
    assert [v.burstable(t) for t in ("t2.medium", "t3a.large", "t4g.nano", "m5.large", "c6g.xlarge")] == [
        True,
        True,
        True,
        False,
        False,
    ]


# -- score and exclusions ---------------------------------------------------------------------------


def test_exclusions_leave_numerator_and_denominator() -> None:
    evals = pd.DataFrame(
        {
            "check": ["a.x"] * 6 + ["b.y"] * 4,
            "group": "g",
            "object": [f"pod/ns{i % 2}/p{i}" for i in range(10)],
            "namespace": [f"ns{i % 2}" for i in range(10)],
            "severity": ["high", "", "", "low", "", "", "info", "", "medium", ""],
            "message": "",
            "evidence": "",
        }
    )
    # failing = high, low, medium (info does not count): 3 of 10
    assert v.score(evals) == 70.0
    kept, excluded = v.apply_exclude(evals, ["namespace:ns1"])
    # ns0 holds p0 (high), p2, p4, p6 (info), p8 (medium): 2 failing of 5
    assert v.score(kept) == 60.0
    assert set(excluded["object"]) == {"pod/ns1/p1", "pod/ns1/p3", "pod/ns1/p5", "pod/ns1/p7", "pod/ns1/p9"}
    assert set(excluded["rule"]) == {"namespace:ns1"}
    kept, excluded = v.apply_exclude(evals, ["check:b.*", "object:pod/ns0/p0"])
    # a.x without p0: p1..p5 with p3 low failing: 1 of 5
    assert v.score(kept) == 80.0
    assert excluded.groupby("rule").size().to_dict() == {"check:b.*": 4, "object:pod/ns0/p0": 1}


def test_excluded_finding_is_listed_not_counted() -> None:
    inputs = healthy_inputs()
    inputs.snapshot = snapshot(
        [node("cp1", "master-a", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")],
        [*control_plane_pods("cp1"), pod("legacy", "old", "n1", ready=False, waiting="CrashLoopBackOff")],
    )
    assert not v.evaluate(inputs).passed
    val = v.evaluate(inputs, v.Options(exclude=("namespace:legacy",)))
    assert val.passed and val.score == 100.0
    ex = val.exclusions()
    assert ex.to_dict("records") == [{"rule": "namespace:legacy", "evaluations": 7, "findings": 1}]


@pytest.mark.parametrize("rule", ["kube-system", "ns:kube-system", "namespace:", "check"])
def test_bad_exclude_rule_is_bad_input(rule: str) -> None:
    with pytest.raises(BadInput):
        v.Options(exclude=(rule,))


def test_fail_on_lowers_the_bar() -> None:
    inputs = healthy_inputs()
    inputs.snapshot = snapshot(
        [node("cp1", "master-a", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")],
        [*control_plane_pods("cp1"), pod("a", "x", "n1", image="x:latest")],
    )
    assert v.evaluate(inputs).passed
    assert not v.evaluate(inputs, v.Options(fail_on="low")).passed


def test_forbidden_nodes_do_not_look_like_missing_nodes() -> None:
    inputs = healthy_inputs()
    inputs.snapshot = snapshot([], control_plane_pods("cp1"))
    inputs.snapshot.notes = {"nodes": "list nodes: forbidden"}
    val = v.evaluate(inputs)
    assert val.passed and val.findings.empty
    assert set(val.notes["check"]) == set(v.NEEDS["nodes"])
    assert "kops.instancegroup.size" not in set(val.evaluations["check"])


def test_forbidden_kind_degrades_its_checks() -> None:
    inputs = healthy_inputs()
    inputs.snapshot.notes = {"secrets": "list secrets: forbidden for this identity"}
    val = v.evaluate(inputs)
    assert val.passed
    assert val.notes.to_dict("records") == [
        {"check": "certs.expiry", "note": "secrets: list secrets: forbidden for this identity"}
    ]


# -- wait / count -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _attempts(results: list[bool | None]) -> Any:
    good, bad = v.evaluate(healthy_inputs()), v.evaluate(healthy_inputs(), v.Options(fail_on="low"))
    bad.passed = False
    seq = iter(results)

    def attempt() -> v.Validation:
        r = next(seq)
        if r is None:
            raise ClusterUnreachable("down")
        return good if r else bad

    return attempt


def test_count_requires_consecutive_passes() -> None:
    clock = FakeClock()
    run = v.validate_until(
        _attempts([False, True, False, True, True, True, True]),
        wait_s=100,
        count=3,
        interval_s=5,
        clock=clock,
        sleep=clock.sleep,
    )
    assert run.passed
    assert list(run.attempts["passed"]) == [False, True, False, True, True, True]
    assert clock.t == 25  # five pauses between six attempts


def test_wait_times_out_and_unreachable_counts_as_failure() -> None:
    clock = FakeClock()
    run = v.validate_until(
        _attempts([None, True, False, True, True, False]),
        wait_s=22,
        count=2,
        interval_s=5,
        clock=clock,
        sleep=clock.sleep,
    )
    # attempts at t=0,5,10,15,20: the fifth passes (streak 2) just in time
    assert run.passed and len(run.attempts) == 5
    assert run.attempts["error"].iloc[0] == "down"
    clock = FakeClock()
    run = v.validate_until(
        _attempts([False] * 10), wait_s=12, count=1, interval_s=5, clock=clock, sleep=clock.sleep
    )
    assert not run.passed and len(run.attempts) == 3 and "wait time (12s) exceeded" in run.reason
    assert any(
        f.check == "kops.pod.system_critical" or f.severity in ("high", "critical")
        for f in v.validate_findings(run)
    )


def test_without_wait_count_above_one_fails_like_kops() -> None:
    run = v.validate_until(_attempts([True]), wait_s=0, count=2, interval_s=1)
    assert not run.passed and "not 2" in run.reason
    records = v.validate_findings(run)
    assert [(f.check, f.severity) for f in records] == [("validate.result", "high")]
    with pytest.raises(ClusterUnreachable):
        v.validate_until(_attempts([None]), wait_s=0)


# -- certificates -----------------------------------------------------------------------------------


def test_certificates_in_secret_and_expiry_severities() -> None:
    soon, key = make_cert("push.example.com", NOW + timedelta(days=3))
    later, _ = make_cert("api.example.com", NOW + timedelta(days=20))
    far, _ = make_cert("ok.example.com", NOW + timedelta(days=200))
    gone, _ = make_cert("old.example.com", NOW - timedelta(days=2))
    data = {"tls.crt": base64.b64encode(soon + later).decode(), "tls.key": base64.b64encode(key).decode()}
    rows = k8s_certs.certificates_in("shop", "secret/shop/push", data, base64_values=True)
    assert [r["subject"] for r in rows] == ["CN=push.example.com", "CN=api.example.com"]
    rows += k8s_certs.certificates_in(
        "shop", "configmap/shop/ca", {"ca.pem": (far + gone).decode(), "x": "hello"}, base64_values=False
    )
    df = inv._frame(rows, inv.CERT_COLUMNS, ("not_after",))
    ev = certs.expiry_evaluations(df, NOW, days=30)
    assert list(ev["severity"]) == ["high", "medium", "", "critical"]
    assert "EXPIRED 2.0 days ago" in ev["message"].iloc[3]
    assert k8s_certs.pem_certificates(b"not a pem") == []


# -- plots ------------------------------------------------------------------------------------------


def test_readiness_table_and_figures() -> None:
    snap = snapshot(
        [
            node("cp1", "master-a", cp=True),
            node("n1", "nodes-a", ready="Unknown"),
            node("n2", "nodes-a"),
            node("n3", "nodes-b", ready="False"),
        ],
        [pod("a", "x"), pod("a", "y", phase="Pending"), pod("b", "z")],
    )
    targets = pd.DataFrame({"instance_group": ["master-a", "nodes-a", "nodes-b"], "target": [1, 4, 1]})
    table = plots.readiness_by_instance_group(snap.nodes, targets)
    assert table.loc["nodes-a"].to_dict() == {"Ready": 1, "NotReady": 0, "Unknown": 1, "Missing": 2}
    assert table.loc["nodes-b"].to_dict() == {"Ready": 0, "NotReady": 1, "Unknown": 0, "Missing": 0}
    phases = plots.pods_by_phase_table(snap.pods)
    assert phases.loc["a"].to_dict() == {"Pending": 1, "Running": 1}
    assert isinstance(plots.node_readiness(snap.nodes, targets), Figure)
    assert isinstance(plots.pods_by_phase(snap.pods), Figure)
    assert isinstance(plots.pods_by_phase(snap.pods.iloc[0:0]), Figure)


def test_label_targets_count_nodes_per_group() -> None:
    snap = snapshot([node("n1", "a"), node("n2", "a"), node("n3", "b")], [])
    t = asg.label_targets(snap.nodes)
    assert dict(zip(t["instance_group"], t["target"], strict=True)) == {"a": 2, "b": 1}
    assert set(t["source"]) == {"node-labels"}


def test_workload_checks_on_a_cluster_without_pods() -> None:
    # a new cluster (or a namespace filter that matches nothing) has no pods: every pod check passes empty
    pods = inv._frame([], inv.POD_COLUMNS, ("created",))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for out in (v.check_pending(pods, now), v.check_crashloop(pods), v.check_image_pull(pods)):
        assert out.empty and list(out.columns) == v.EVAL_COLUMNS
