"""Pure functions of the upgrade-cluster runbook, with hand-computed inputs and answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opsbook.analysis import upgrade as an
from opsbook.errors import BadInput

V = an.Version.parse


def test_versions_parse_and_compare() -> None:
    assert V("v1.33.1") == an.Version(1, 33, 1)
    assert V("1.34") == an.Version(1, 34, 0)
    assert V("v1.33.1-eks.2") < V("1.33.2") < V("1.34.0")
    with pytest.raises(BadInput, match="not a Kubernetes version"):
        V("latest")


@pytest.mark.parametrize(("target", "message"), [
    ("1.32.9", "older than the cluster's control plane"),
    ("1.33.0", "older than the cluster's control plane"),
    ("1.35.0", "2 minors ahead"),
    ("banana", "not a Kubernetes version"),
])
def test_bad_targets_are_refused(target: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        an.check_target(target, "v1.33.1", ["v1.33.1", "v1.32.0"], [], ["nodes-a"])


def test_unknown_instance_group_is_refused_with_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"no instance group 'nodes-x'.*it has master-a, nodes-a"):
        an.check_target("1.34.4", "1.33.1", ["v1.33.1"], ["nodes-x"], ["master-a", "nodes-a"])


def test_one_minor_ahead_and_same_version_pass() -> None:
    assert an.check_target("1.34.4", "v1.33.1", ["v1.33.1"], ["nodes-a"], ["nodes-a"]) == an.Version(1, 34, 4)
    assert an.check_target("1.33.1", "v1.33.1", ["v1.33.1"], [], []) == an.Version(1, 33, 1)


def test_kubelet_too_far_behind_is_refused() -> None:
    with pytest.raises(BadInput, match="oldest kubelet"):
        an.check_target("1.34.0", "1.33.0", ["v1.30.2"], [], [])


def test_channel_recommendation_takes_the_first_matching_kops_range() -> None:
    channel = {"spec": {"kopsVersions": [
        {"range": ">=1.34.0-alpha.1", "kubernetesVersion": "1.34.1"},
        {"range": ">=1.33.0-alpha.1", "kubernetesVersion": "1.33.5"},
        {"range": ">=1.32.0-alpha.1", "kubernetesVersion": "1.32.9"}]}}
    assert an.channel_recommendation(channel, "v1.33.1") == "1.33.5"
    assert an.channel_recommendation(channel, "v1.31.0") == ""


def nodes_frame() -> pd.DataFrame:
    return pd.DataFrame([
        {"name": "n-b", "instance_group": "nodes-b", "role": "node", "zone": "b", "kubelet_version": "v1.33.1"},
        {"name": "n-a", "instance_group": "nodes-a", "role": "node", "zone": "a", "kubelet_version": "v1.33.1"},
        {"name": "m-a", "instance_group": "master-a", "role": "control-plane", "zone": "a",
         "kubelet_version": "v1.33.1"},
        {"name": "n-c", "instance_group": "nodes-c", "role": "node", "zone": "c", "kubelet_version": "v1.34.4"},
    ])


def test_nodes_to_replace_control_plane_first_and_skip_done() -> None:
    todo = an.nodes_to_replace(nodes_frame(), V("1.34.4"))
    assert list(todo["name"]) == ["m-a", "n-a", "n-b"]  # n-c already runs the target
    assert list(todo["order"]) == [1, 2, 3]
    only = an.nodes_to_replace(nodes_frame(), V("1.34.4"), ["nodes-b"])
    assert list(only["name"]) == ["n-b"]


def test_version_skew_findings() -> None:
    nodes = nodes_frame()
    nodes.loc[3, "kubelet_version"] = "v1.34.0"  # newer than a 1.33 control plane
    out = {f.check: f for f in an.version_skew(V("1.34.4"), "1.33.1", nodes, "v1.33.1", "kops")}
    assert out["upgrade.skew.kubelet-newer"].object == "node/n-c"
    assert out["upgrade.skew.kops-range"].severity == "high"  # kops 1.33 cannot run 1.34
    assert "kops >= 1.34" in out["upgrade.skew.kops-range"].message
    assert out["upgrade.skew.plan"].data["nodes_behind"] == 4
    sandbox = {f.check: f for f in an.version_skew(V("1.33.9"), "1.33.1", nodes_frame(), "v1.33.1", "sandbox")}
    assert sandbox["upgrade.skew.kops-range"].severity == "info"


def pdb(name: str, api_version: str, min_available: int, allowed: int, expected: int,
        labels: dict[str, str]) -> dict[str, object]:
    applied = {"apiVersion": api_version, "kind": "PodDisruptionBudget",
               "metadata": {"name": name, "namespace": "shop"},
               "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}}}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "shop",
                         "annotations": {an.LAST_APPLIED: json.dumps(applied)}},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}},
            "status": {"disruptionsAllowed": allowed, "expectedPods": expected, "currentHealthy": expected,
                       "desiredHealthy": min_available}}


def test_removed_api_in_last_applied_is_reported_with_its_replacement() -> None:
    objs = [pdb("legacy", "policy/v1beta1", 1, 1, 2, {"app": "a"}), pdb("modern", "policy/v1", 1, 1, 2, {"app": "b"})]
    applied = an.last_applied_versions(objs)
    assert list(applied["applied_as"]) == ["policy/v1beta1", "policy/v1"]
    out = an.api_findings(V("1.34.4"), applied, an.parse_deprecated_metric(""))
    assert len(out) == 1
    f = out[0]
    assert (f.check, f.severity, f.object) == ("upgrade.api.removed", "high", "poddisruptionbudget/shop/legacy")
    assert f.data["replacement"] == "policy/v1" and f.data["removed_in"] == "1.25"
    assert "use policy/v1" in f.message


def test_deprecated_not_yet_removed_is_low() -> None:
    applied = pd.DataFrame([{"object": "flowschema/x", "served_as": "flowcontrol.apiserver.k8s.io/v1",
                             "applied_as": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema"}])
    early = an.api_findings(V("1.31.0"), applied, an.parse_deprecated_metric(""))
    late = an.api_findings(V("1.32.0"), applied, an.parse_deprecated_metric(""))
    assert [(f.check, f.severity) for f in early] == [("upgrade.api.deprecated", "low")]
    assert [(f.check, f.severity) for f in late] == [("upgrade.api.removed", "high")]


def test_requested_deprecated_apis_metric() -> None:
    text = "\n".join([
        "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested",
        'apiserver_requested_deprecated_apis{group="policy",removed_release="1.25",resource="podsecuritypolicies",'
        'subresource="",version="v1beta1"} 1',
        'apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",'
        'resource="flowschemas",subresource="",version="v1beta3"} 1',
        "apiserver_request_total{code=\"200\"} 5"])
    req = an.parse_deprecated_metric(text)
    assert list(req["resource"]) == ["podsecuritypolicies", "flowschemas"]
    out = an.api_findings(V("1.31.2"), an.last_applied_versions([]), req)
    got = {f.object: (f.check, f.data["replacement"]) for f in out}
    assert got["policy/v1beta1/podsecuritypolicies"][0] == "upgrade.api.requested-removed"
    assert got["flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"] == (
        "upgrade.api.requested-deprecated", "flowcontrol.apiserver.k8s.io/v1")


def pod(name: str, node: str, labels: dict[str, str], owner: str = "ReplicaSet", cpu: str = "100m",
        mem: str = "128Mi", empty_dir: bool = False) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "shop", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x"}]
    spec: dict[str, object] = {"nodeName": node, "containers": [{"name": "c", "resources": {
        "requests": {"cpu": cpu, "memory": mem}}}]}
    if empty_dir:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    return {"metadata": meta, "spec": spec, "status": {"phase": "Running"}}


def deploy(name: str, replicas: int, labels: dict[str, str]) -> dict[str, object]:
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels}}}}


def test_drain_blockers() -> None:
    pdbs = [pdb("ledger", "policy/v1", 2, 0, 2, {"app": "ledger"})]
    workloads = [deploy("ledger", 2, {"app": "ledger"}), deploy("mongo", 1, {"app": "mongo"}),
                 deploy("api", 3, {"app": "api"})]
    pods = [pod("bare", "n-a", {"run": "bare"}, owner=""), pod("cache", "n-a", {"app": "api"}, empty_dir=True),
            {"metadata": {"name": "kube-apiserver-m", "namespace": "kube-system",
                          "annotations": {"kubernetes.io/config.mirror": "x"}}, "spec": {}, "status": {}}]
    out = an.drain_blockers(pdbs, workloads, pods, [{"metadata": {"name": "fluentd", "namespace": "logging"}}])
    got = sorted((f.check, f.object, f.severity) for f in out)
    assert got == [
        ("upgrade.drain.bare-pod", "pod/shop/bare", "high"),
        ("upgrade.drain.daemonset", "daemonset/logging/fluentd", "info"),
        ("upgrade.drain.local-storage", "pod/shop/cache", "low"),
        ("upgrade.drain.pdb-blocks", "pdb/shop/ledger", "high"),
        ("upgrade.drain.single-replica", "deployment/shop/mongo", "medium"),
    ]
    assert "minAvailable=2" in next(f.message for f in out if f.check == "upgrade.drain.pdb-blocks")


def node(name: str, zone: str, cpu: str, mem: str, role: str = "node") -> dict[str, object]:
    labels = {"topology.kubernetes.io/zone": zone}
    if role == "control-plane":
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {"metadata": {"name": name, "labels": labels}, "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": mem}}}


def test_spare_capacity_per_zone() -> None:
    nodes = [node("a1", "a", "2", "4Gi"), node("a2", "a", "2", "4Gi"), node("b1", "b", "2", "4Gi"),
             node("m", "a", "2", "4Gi", "control-plane")]
    pods = [pod("p1", "a1", {}, cpu="1500m", mem="1Gi"), pod("p2", "a2", {}, cpu="1", mem="1Gi"),
            pod("p3", "b1", {}, cpu="1", mem="1Gi")]
    load = an.node_load(nodes, pods)
    assert load.set_index("node").loc["a1", "movable_cpu"] == pytest.approx(1.5)
    table, findings = an.spare_capacity(load, max_surge=0)
    a = table.set_index("zone").loc["a"]
    # a1 is the busiest (1.5 CPU); a2 has 2 - 1 = 1 CPU spare: does not fit in zone a
    assert (a["busiest"], a["need_cpu"], a["spare_cpu"], bool(a["fits"])) == ("a1", 1.5, 1.0, False)
    b = table.set_index("zone").loc["b"]
    assert (b["workers"], b["spare_cpu"], bool(b["fits"])) == (1, 0.0, False)
    # zone a's pods fit when b1's spare CPU (1) is added: only medium without surge
    sev = {f.object: f.severity for f in findings}
    assert sev == {"zone/a": "medium", "zone/b": "medium"}
    _, with_surge = an.spare_capacity(load, max_surge=1)
    assert {f.object: f.severity for f in with_surge} == {"zone/a": "low", "zone/b": "low"}


def test_quantities() -> None:
    assert an.quantity("100m") == pytest.approx(0.1)
    assert an.quantity("128Mi") == 128 * 2**20
    assert an.quantity("2") == 2.0 and an.quantity(None) == 0.0


def test_estimate() -> None:
    est = an.estimate(3, pods_per_node=4, provider="kops", drain_timeout=300)
    assert est.total_s == 3 * (25 + an.AWS_BOOT_S + an.AWS_VALIDATE_S)
    assert "3 nodes x (25s drain" in est.line()
    assert an.estimate(3, 100, "kops", drain_timeout=60).drain_s == 60


def test_availability_and_zero_downtime_findings() -> None:
    rows = []
    # api: 3 replicas, PDB min 2, dips to 2; mongo: 1 replica, 0 ready from t=2.0 to t=3.5; web: 2 replicas,
    # goes to 0 for 1 s
    for t, api_, mongo, web in [(0, 3, 1, 2), (1, 2, 1, 2), (2, 3, 0, 0), (2.5, 3, 0, 2), (3.5, 3, 1, 2),
                                (4, 3, 1, 2)]:
        rows += [{"t": t, "workload": "deployment/shop/api", "kind": "deployment", "replicas": 3, "ready": api_,
                  "endpoints": api_},
                 {"t": t, "workload": "deployment/shop/mongo", "kind": "deployment", "replicas": 1,
                  "ready": mongo, "endpoints": float("nan")},
                 {"t": t, "workload": "deployment/shop/web", "kind": "deployment", "replicas": 2, "ready": web,
                  "endpoints": web}]
    budgets = pd.DataFrame([{"workload": "deployment/shop/api", "pdb": "shop/api", "min_ready": 2}])
    av = an.availability(pd.DataFrame(rows), budgets).set_index("workload")
    assert av.loc["deployment/shop/api", "min_ready"] == 2 and not av.loc["deployment/shop/api", "below_pdb"]
    assert av.loc["deployment/shop/mongo", "zero_ready_s"] == pytest.approx(1.5)  # 2.0 -> 3.5
    assert av.loc["deployment/shop/web", "zero_ready_s"] == pytest.approx(0.5)
    assert av.loc["deployment/shop/api", "min_endpoints"] == 2
    assert pd.isna(av.loc["deployment/shop/mongo", "min_endpoints"])  # no service selects it
    out = {f.check: f for f in an.downtime_findings(av.reset_index())}
    assert out["upgrade.availability.down"].object == "deployment/shop/web"
    assert out["upgrade.availability.single-replica-down"].data["zero_ready_s"] == pytest.approx(1.5)
    assert "upgrade.availability.zero-downtime" not in out
    ok = an.downtime_findings(av.drop(index="deployment/shop/web").reset_index())
    assert [f.check for f in ok] == ["upgrade.availability.single-replica-down",
                                     "upgrade.availability.zero-downtime"]


def test_below_pdb_fails_zero_downtime() -> None:
    rows = [{"t": t, "workload": "deployment/s/a", "kind": "deployment", "replicas": 3, "ready": r,
             "endpoints": r} for t, r in [(0, 3), (1, 1), (2, 3)]]
    budgets = pd.DataFrame([{"workload": "deployment/s/a", "pdb": "s/a", "min_ready": 2}])
    out = an.downtime_findings(an.availability(pd.DataFrame(rows), budgets))
    assert [(f.check, f.severity) for f in out] == [("upgrade.availability.below-pdb", "high")]


def test_a_drop_of_a_few_milliseconds_still_has_a_length() -> None:
    # kwok replaces an evicted single replica within milliseconds: the probe sees 0 ready for ~3 ms,
    # and the downtime must not round away to zero (CI once reported 0.0 s for a seen drop)
    rows = [{"t": t, "workload": "deployment/s/solo", "kind": "deployment", "replicas": 1, "ready": r,
             "endpoints": float("nan")} for t, r in [(0.0, 1), (4.1021, 0), (4.1052, 1), (5.0, 1)]]
    av = an.availability(pd.DataFrame(rows), pd.DataFrame(columns=["workload", "pdb", "min_ready"]))
    assert av.loc[0, "zero_ready_s"] == pytest.approx(0.003)
    (f,) = an.downtime_findings(av)[:1]
    assert f.check == "upgrade.availability.single-replica-down" and "was down for 3 ms" in f.message
