"""The sandbox behaves like a cluster with real kubelets when nodes come and go.

- A node that stops heartbeating is the only node that goes NotReady (no kwok restart,
  no other node flapping).
- When a node is back (heartbeats resumed, kwok restarted, API server restarted), its
  pods report Ready again by themselves within a kubelet-like delay (<= 15 s), with
  nobody calling a resync: kwok's ``pod-ready-again`` Stage does what a reconnecting
  kubelet does.
- Pods that are unready for a reason of their own (the crash-loop and bad-database
  drills) stay unready.
- The master-restart drill during ``validate-cluster wait=120 count=3`` passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from k8s_helpers import wait_until as _wait
from opsbook.runbooks import validate_cluster as vc
from opsbook.sandbox import Sandbox, drills, faults

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.private_sandbox]

BACK_WITHIN_S = 15  # a kubelet re-reports its pods within seconds of reconnecting
# Tolerate the node's absence long enough that its pods are not evicted: they must come back as they were.
LONG_TOLERATIONS = [
    k8s.V1Toleration(key=f"node.kubernetes.io/{t}", operator="Exists", effect="NoExecute", toleration_seconds=900)
    for t in ("unreachable", "not-ready")
]


def _ready(obj: k8s.V1Node | k8s.V1Pod) -> str:
    return next((c.status for c in obj.status.conditions or [] if c.type == "Ready"), "")


def _patient_deployment(name: str, replicas: int) -> k8s.V1Deployment:
    labels = {"app": name}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(
                    tolerations=LONG_TOLERATIONS,
                    # one pod per worker, so every worker has a pod to bring back
                    topology_spread_constraints=[
                        k8s.V1TopologySpreadConstraint(
                            max_skew=1,
                            topology_key="kubernetes.io/hostname",
                            when_unsatisfiable="DoNotSchedule",
                            label_selector=k8s.V1LabelSelector(match_labels=labels),
                        )
                    ],
                    node_selector={"kubernetes.io/role": "node"},
                    containers=[k8s.V1Container(name="app", image="example/app:1.0")],
                ),
            ),
        ),
    )


def _ready_pods(core: k8s.CoreV1Api, ns: str, app: str, count: int) -> list[k8s.V1Pod]:
    def ready() -> list[k8s.V1Pod] | None:
        pods = [
            p
            for p in core.list_namespaced_pod(ns, label_selector=f"app={app}").items
            if not p.metadata.deletion_timestamp and _ready(p) == "True"
        ]
        return pods if len(pods) == count else None

    result: list[k8s.V1Pod] = _wait(ready, 60, f"{count} ready pods of {app}")
    return result


def _back_within(core: k8s.CoreV1Api, pods: list[k8s.V1Pod], timeout: float) -> dict[str, float]:
    """Wait until each pod's node is Ready and, at most ``timeout`` s after that, the pod is Ready.

    Fails if a pod is still NotReady ``timeout`` s after its node was seen Ready again.
    Returns each pod's delay (pod Ready seen - node Ready seen), in seconds.
    """
    node_back: dict[str, float] = {}
    pod_back: dict[str, float] = {}
    names = {p.metadata.name: (p.metadata.namespace, p.spec.node_name) for p in pods}
    deadline = time.monotonic() + 120
    while len(pod_back) < len(names) and time.monotonic() < deadline:
        now = time.monotonic()
        for node in {n for _, n in names.values()} - node_back.keys():
            if _ready(core.read_node(node)) == "True":
                node_back[node] = now
        for name, (ns, node) in names.items():
            if name in pod_back or node not in node_back:
                continue
            if _ready(core.read_namespaced_pod(name, ns)) == "True":
                pod_back[name] = now
            elif now - node_back[node] > timeout:
                raise AssertionError(f"pod {ns}/{name} still NotReady {timeout}s after its node {node} was Ready")
        time.sleep(0.5)
    assert len(pod_back) == len(names), f"nodes or pods never came back: {set(names) - pod_back.keys()}"
    return {name: pod_back[name] - node_back[names[name][1]] for name in names}


def test_stop_heartbeat_fails_only_that_node_and_its_pods_come_back(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(api)
    faults.wait_settled(api, 90)
    workers = sorted(n.metadata.name for n in core.list_node(label_selector="kubernetes.io/role=node").items)
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _patient_deployment("web", len(workers)))
    pods = _ready_pods(core, namespace, "web", len(workers))
    victim = workers[0]
    on_victim = [p for p in pods if p.spec.node_name == victim]
    others = [n.metadata.name for n in core.list_node().items if n.metadata.name != victim]
    assert on_victim and others
    seen_elsewhere: set[tuple[str, str]] = set()  # (object, Ready status) observed on the healthy side
    t0 = time.time()
    try:
        faults.stop_heartbeat(sandbox, api, victim)

        def victim_lost_and_pods_marked() -> bool:
            for n in others:
                seen_elsewhere.add((f"node/{n}", _ready(core.read_node(n))))
            for p in core.list_namespaced_pod(namespace, label_selector="app=web").items:
                if p.spec.node_name != victim:
                    seen_elsewhere.add((f"pod/{p.metadata.name}", _ready(p)))
            pods_now = [core.read_namespaced_pod(p.metadata.name, namespace) for p in on_victim]
            return _ready(core.read_node(victim)) == "Unknown" and all(_ready(p) == "False" for p in pods_now)

        _wait(victim_lost_and_pods_marked, 90, f"{victim} Unknown and its pods marked NotReady")
        # the other nodes and their pods never left Ready while the victim was lost
        assert {status for _, status in seen_elsewhere} == {"True"}, sorted(seen_elsewhere)
        lapsed = {
            e.involved_object.name
            for e in core.list_event_for_all_namespaces(field_selector="reason=NodeNotReady").items
            if e.involved_object.kind == "Node" and e.involved_object.name in others
            and (e.last_timestamp or e.event_time or e.metadata.creation_timestamp).timestamp() >= t0 - 1
        }
        assert not lapsed, f"healthy nodes went NotReady with the victim: {lapsed}"
        assert faults.heartbeat_stopped(api, victim)
    finally:
        faults.resume_heartbeat(sandbox, api, victim)
    # the same pods (not replacements) report Ready again by themselves
    delays = _back_within(core, on_victim, BACK_WITHIN_S)
    print(f"pod Ready after its node, s: {sorted(round(d, 1) for d in delays.values())}")
    assert set(delays) == {p.metadata.name for p in on_victim}
    assert all(
        core.read_namespaced_pod(p.metadata.name, namespace).metadata.uid == p.metadata.uid for p in on_victim
    )
    faults.wait_settled(api, 60)


@pytest.fixture
def drilled(sandbox: Sandbox, api: k8s.ApiClient) -> Iterator[dict[str, list[str]]]:
    """The taxi workloads with the crash-loop and bad-database drills applied; undone and removed after."""
    core = k8s.CoreV1Api(api)
    faults.wait_settled(api, 90)
    drills.reset(sandbox, api)
    drills.ensure_workloads(api)
    # The drilled pods must outlast the restart below: with the sandbox's 10 s tolerations the taint manager
    # may evict them while their nodes lapse (it did once in a fresh-clone run: read 404), and the pods asserted
    # on would be gone. Their drills' rollouts keep the template's tolerations.
    tolerations = api.sanitize_for_serialization(LONG_TOLERATIONS)
    for name in ("taxi-api", "mongodb"):
        k8s.AppsV1Api(api).patch_namespaced_deployment(
            name, drills.NAMESPACE, {"spec": {"template": {"spec": {"tolerations": tolerations}}}}
        )
    crash = drills.run_drill("crashloop-after-deploy", sandbox, api).details["pods"]
    mongo = drills.run_drill("bad-database-update", sandbox, api).details["pods"]
    yield {"crash": crash, "mongo": mongo}
    drills.reset(sandbox, api)
    core.delete_namespace(drills.NAMESPACE)
    _wait(
        lambda: drills.NAMESPACE not in {n.metadata.name for n in core.list_namespace().items},
        90,
        "namespace taxi deleted",
    )
    faults.wait_settled(api, 90)


def test_after_a_kwok_restart_pods_come_back_but_drilled_ones_stay_unready(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str, drilled: dict[str, list[str]]
) -> None:
    core = k8s.CoreV1Api(api)
    workers = sorted(n.metadata.name for n in core.list_node(label_selector="kubernetes.io/role=node").items)
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _patient_deployment("web", len(workers)))
    pods = _ready_pods(core, namespace, "web", len(workers))
    # down for longer than the 10 s grace period: every node lapses, the node controller marks every pod NotReady
    marked: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and len(marked) < len(pods):
            for p in core.list_namespaced_pod(namespace, label_selector="app=web").items:
                if _ready(p) == "False":
                    marked.add(p.metadata.name)
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        faults.restart_kwok(sandbox, down_seconds=18)
        watcher.join(20)  # until every pod was seen NotReady
    finally:
        done.set()
        watcher.join(5)
    assert marked == {p.metadata.name for p in pods}, "the restart should have made every pod NotReady"
    delays = _back_within(core, pods, BACK_WITHIN_S)
    print(f"pod Ready after its node, s: {sorted(round(d, 1) for d in delays.values())}")
    assert len(delays) == len(pods)
    # the drilled pods are unready for reasons of their own: they stay so, well past the Stage's delay
    time.sleep(8)
    for name in drilled["crash"] + drilled["mongo"]:
        pod = core.read_namespaced_pod(name, drills.NAMESPACE)  # the same pod: not evicted, not replaced
        assert pod.spec.tolerations and any(t.toleration_seconds == 900 for t in pod.spec.tolerations)
        conds = {c.type: c.status for c in pod.status.conditions}
        assert conds["Ready"] == "False" and conds["ContainersReady"] == "False", (name, conds)
    crash = core.read_namespaced_pod(drilled["crash"][0], drills.NAMESPACE).status.container_statuses[0]
    assert crash.state.waiting.reason == "CrashLoopBackOff" and crash.restart_count == 5
    mongo = core.read_namespaced_pod(drilled["mongo"][0], drills.NAMESPACE).status.container_statuses[0]
    assert mongo.state.running is not None and not mongo.ready
    faults.wait_settled(api, 60)


def test_master_restart_during_validate_with_wait_passes(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    """The user's report: `opsbook run validate-cluster -p wait=120 -p count=3` with `opsbook drill
    master-restart` a few seconds in. The API is down for seconds; the run must pass before its deadline."""
    faults.wait_settled(api, 90)
    drill: list[drills.DrillResult] = []
    errors: list[BaseException] = []

    def restart() -> None:
        try:
            drill.append(drills.drill_master_restart(sandbox, api))
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    thread = threading.Thread(target=restart, daemon=True)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if len(lines) == 1:  # a few seconds in
            thread.start()

    try:
        run = vc.validate_cluster(api=api, wait=120, count=3, interval=5, say=say)
    finally:
        thread.join(120)
    assert not errors, errors
    assert drill and drill[0].details["started_at"] > drill[0].details["stopped_at"]
    att = run.attempts
    print(att[["attempt", "at", "passed", "error"]].to_string(), f"\ndrill: {drill[0].details}", sep="\n")
    assert run.passed, f"{run.reason}\n" + "\n".join(lines)
    assert list(att["passed"].tail(3)) == [True, True, True]
    # the outage was seen: some attempt ran while the API server was down or the cluster was settling
    assert (~att["passed"]).any(), att.to_string()
    last_pass_streak_start = att["at"].iloc[-3].timestamp()
    assert last_pass_streak_start > drill[0].details["stopped_at"]
    faults.wait_settled(api, 60)
