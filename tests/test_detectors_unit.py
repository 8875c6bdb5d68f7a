"""Detectors at the window's edges, with hand-built frames (no servers).

Each test builds the events and state a real incident leaves behind when the window opens long after the
workloads started: pods scheduled hours earlier, a certificate that expired 400 days ago, a rollback to an
old ReplicaSet. Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from kubernetes import client as k8s

from opsbook.analysis import outage
from opsbook.k8s.events import normalise_events
from opsbook.k8s.evidence import rollout_evidence, rows

T0 = pd.Timestamp("2024-05-01T12:00:00Z")  # the window opens here
END = T0 + pd.Timedelta(minutes=30)
VICTIM, OTHER = "ip-10-0-0-1.ec2.internal", "ip-10-0-0-2.ec2.internal"


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def ev(uid: str, reason: str, obj: dict[str, str], message: str, t: float, count: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "uid": uid,
            "name": f"{obj['name']}.{uid}",
            "namespace": obj.get("namespace", "default"),
            "creationTimestamp": at(t).isoformat(),
        },
        "involvedObject": obj,
        "reason": reason,
        "message": message,
        "type": "Warning" if reason in ("BackOff", "Unhealthy") else "Normal",
        "firstTimestamp": at(t).isoformat(),
        "lastTimestamp": at(t).isoformat(),
        "count": count,
        "source": {"component": "test"},
    }


def pod(name: str) -> dict[str, str]:
    return {"kind": "Pod", "namespace": "shop", "name": name}


def node_state(node: str, hb: float) -> list[tuple[Any, ...]]:
    """What the current state shows of a node that stopped heartbeating at ``hb`` (grace 40 s)."""
    return [
        (at(hb), "node", f"node/{node}", "heartbeat stopped", "lease", "high", f"kubectl describe node {node}"),
        (at(hb + 40), "node", f"node/{node}", "Ready=Unknown", "NodeStatusUnknown", "high", "x"),
        (at(hb + 40), "node", f"node/{node}", "taint node.kubernetes.io/unreachable:NoExecute", "x", "high", "x"),
    ]


OLD = -3 * 3600  # three hours before the window: when the workloads were deployed


def test_node_lost_ties_pods_scheduled_hours_before_the_window() -> None:
    web1, web2, api1 = "web-7d9f8c6b5d-aaaaa", "web-7d9f8c6b5d-bbbbb", "api-6c8d9f7b4c-ccccc"
    events = normalise_events(
        [
            # scheduled three hours before the window: outside it, still in the archive
            ev("s1", "Scheduled", pod(web1), f"Successfully assigned shop/{web1} to {VICTIM}", OLD),
            ev("n1", "NodeNotReady", {"kind": "Node", "name": VICTIM}, "NodeNotReady", 40),
            ev("m1", "TaintManagerEviction", pod(web1), f"Marking for deletion Pod shop/{web1}", 340),
            ev("m2", "TaintManagerEviction", pod(web2), f"Marking for deletion Pod shop/{web2}", 340),
            ev("m3", "TaintManagerEviction", pod(api1), f"Marking for deletion Pod shop/{api1}", 341),
        ]
    )
    state = rows(
        [
            *node_state(VICTIM, 0),
            # web2 and api1 have no Scheduled event any more; they are Terminating on the node in the state
            (at(OLD), "pod", f"pod/shop/{web2}", "created", f"on node {VICTIM}", "info", "x"),
            (at(340), "pod", f"pod/shop/{web2}", "deleting", f"on node {VICTIM}", "medium", "x"),
            (at(OLD), "pod", f"pod/shop/{api1}", "created", f"on node {VICTIM}", "info", "x"),
            (at(OLD), "rollout", "deployment/shop/web", "ReplicaSet web-7d9f8c6b5d created", "revision 3", "low", "x"),
            (at(OLD), "rollout", "deployment/shop/api", "ReplicaSet api-6c8d9f7b4c created", "revision 9", "low", "x"),
        ]
    )
    found = outage.run_detectors(events, state, None, T0, END, config=outage.Config(toleration_s=300))
    top = found.iloc[0]
    assert (top["rank"], top["kind"], top["check"], top["object"], top["severity"]) == (
        1,
        "cause",
        "node.lost",
        f"node/{VICTIM}",
        "critical",
    )
    assert top["time"] == T0  # the last heartbeat
    d = top["data"]
    assert d["evictions"] == 3
    assert d["evicted_pods"] == [f"shop/{api1}", f"shop/{web1}", f"shop/{web2}"]
    assert d["workloads"] == {"deployment/shop/web": 2, "deployment/shop/api": 1}
    # heartbeat 0 → NotReady 40 → taint 40 → first eviction 340: 40 s grace, 300 s toleration
    assert (d["delay_not_ready_s"], d["delay_taint_s"], d["delay_evict_s"]) == (40, 0, 300)
    assert "3 pod(s) evicted" in top["message"] and "deployment/shop/web (2 pods)" in top["message"]


def test_node_lost_evictions_of_pods_nobody_remembers_go_to_the_only_lost_node() -> None:
    # the pods are gone from the state and their Scheduled events expired: only the taint manager's
    # events are left, and one node went bad in the window
    events = normalise_events(
        [
            ev(
                "m1",
                "TaintManagerEviction",
                pod("web-7d9f8c6b5d-aaaaa"),
                "Marking for deletion Pod shop/web-7d9f8c6b5d-aaaaa",
                340,
            )
        ]
    )
    found = outage.run_detectors(events, rows(node_state(VICTIM, 0)), None, T0, END)
    assert found.iloc[0]["object"] == f"node/{VICTIM}" and found.iloc[0]["data"]["evictions"] == 1
    assert found.iloc[0]["data"]["workloads"] == {"replicaset/shop/web-7d9f8c6b5d": 1}


def test_cancelled_evictions_are_not_evictions() -> None:
    p = "web-7d9f8c6b5d-aaaaa"
    events = normalise_events(
        [
            ev("n1", "NodeNotReady", {"kind": "Node", "name": OTHER}, "NodeNotReady", 20),
            ev("m1", "TaintManagerEviction", pod(p), f"Marking for deletion Pod shop/{p}", 30),
            ev("c1", "TaintManagerEviction", pod(p), f"Cancelling deletion of Pod shop/{p}", 35),
        ]
    )
    state = rows([(at(OLD), "pod", f"pod/shop/{p}", "created", f"on node {OTHER}", "info", "x")])
    found = outage.run_detectors(events, state, None, T0, END)
    f = found.iloc[0]
    assert (f["check"], f["object"], f["kind"], f["severity"]) == ("node.lost", f"node/{OTHER}", "noise", "low")
    assert f["data"]["evictions"] == 0 and f["data"]["cancelled"] == 1
    assert outage.summary(found)["causes"] == 0


def test_rollback_to_an_old_replicaset_is_a_rollout_at_the_rollback() -> None:
    old_rs, p = "web-5f6d7c8b9a", "web-5f6d7c8b9a-qwert"
    state = rows(
        [
            # created three days ago (revision 2), reused by the rollback at +60 s (now revision 5)
            (
                T0 - pd.Timedelta(days=3),
                "rollout",
                "deployment/shop/web",
                f"ReplicaSet {old_rs} created",
                "revision 5: shop/web:1.9 (earlier revisions 2)",
                "low",
                "x",
            ),
            (
                at(60),
                "rollout",
                "deployment/shop/web",
                f"ReplicaSet {old_rs} scaled up",
                "revision 5: shop/web:1.9 (earlier revisions 2)",
                "low",
                "x",
            ),
        ]
    )
    events = normalise_events(
        [
            ev(
                "r1",
                "ScalingReplicaSet",
                {"kind": "Deployment", "namespace": "shop", "name": "web"},
                f"Scaled up replica set {old_rs} from 0 to 3",
                58,
            ),
            ev("b1", "BackOff", pod(p), "Back-off restarting failed container web in pod x", 90, 6),
        ]
    )
    found = outage.run_detectors(events, state, None, T0, END)
    top = found.iloc[0]
    assert (top["check"], top["object"], top["kind"]) == ("rollout.crashloop", "deployment/shop/web", "cause")
    # the earliest roll-out moment within the look-back: the ScalingReplicaSet event at +58 s
    assert top["time"] == at(58)
    assert top["data"]["reused_replicaset"] is True and top["data"]["rollout_seen_as"] == "ScalingReplicaSet"
    assert "32 s after the rollback/re-roll to an earlier ReplicaSet" in top["message"]
    # with only the ReplicaSet's creation three days ago (the old reading), no rollout is near the crash
    only_created = state[state["what"].str.endswith("created")]
    assert outage.detect_crashloop_after_rollout(events[events["reason"] == "BackOff"], only_created) == []


def test_crash_loop_since_before_the_window_is_not_a_rollout_cause() -> None:
    p = "worker-6b7c8d9e0f-zzzzz"
    state = rows(
        [
            (
                at(-600),
                "rollout",
                "deployment/shop/worker",
                "ReplicaSet worker-6b7c8d9e0f created",
                "revision 1",
                "low",
                "x",
            ),
            (at(-500), "pod", f"pod/shop/{p}", "waiting CrashLoopBackOff", "x", "high", "x"),
        ]
    )
    events = normalise_events([ev("b1", "BackOff", pod(p), "Back-off restarting failed container", 120, 30)])
    found = outage.run_detectors(events, state, None, T0, END)
    # not a cause (no rollout in the window), but listed: a standing problem, dated by its first crash sign
    assert list(found["check"]) == ["pod.crashloop"]
    f = found.iloc[0]
    assert (f["kind"], f["severity"], f["object"]) == ("standing", "medium", f"pod/shop/{p}")
    assert f["time"] == at(-500) and f["data"]["pods"] == 1
    assert "crash-looping since at least 11:51:40Z" in f["message"]


def test_a_standing_crash_loop_stays_standing_when_its_pod_is_replaced() -> None:
    """The crash-looping pod's node died in the window: its replacement crash-loops just the same.

    The first pod's BackOff series began an hour before the window (it is gone now); the replacement was
    created 5 min into the window. Still one standing problem, dated by the first pod, named by the
    pod that loops now (the one whose logs can be read). Seen in a corpus run: "node-lost + noise"
    lost its standing crash loop when the legacy worker sat on the lost node.
    """
    old, new = "worker-6b7c8d9e0f-aaaaa", "worker-6b7c8d9e0f-bbbbb"
    state = rows([(at(300), "pod", f"pod/shop/{new}", "created", f"on node {OTHER}", "info", "x"),
                  (at(330), "pod", f"pod/shop/{new}", "waiting CrashLoopBackOff", "x", "high", "x")])  # fmt: skip
    events = normalise_events([ev("b0", "BackOff", pod(old), "Back-off restarting failed container", -3600, 40),
                               ev("b1", "BackOff", pod(new), "Back-off restarting failed container", 340, 3)])
    found = outage.run_detectors(events, state, None, T0, END)
    assert list(found["check"]) == ["pod.crashloop"]
    f = found.iloc[0]
    assert (f["kind"], f["object"], f["time"], f["data"]["pods"]) == ("standing", f"pod/shop/{new}", at(-3600), 2)


def test_crash_loop_that_began_inside_the_window_without_a_rollout_is_not_standing() -> None:
    p = "worker-6b7c8d9e0f-zzzzz"
    state = rows([(at(300), "pod", f"pod/shop/{p}", "waiting CrashLoopBackOff", "x", "high", "x")])
    events = normalise_events([ev("b1", "BackOff", pod(p), "Back-off restarting failed container", 320, 3)])
    assert "pod.crashloop" not in set(outage.run_detectors(events, state, None, T0, END)["check"])


def test_a_crash_loop_explained_by_an_in_window_rollout_is_not_also_standing() -> None:
    p = "web-5f6d7c8b9a-qwert"
    state = rows([
        (at(-7200), "pod", f"pod/shop/{p}", "created", "x", "low", "x"),
        (at(60), "rollout", "deployment/shop/web", "ReplicaSet web-5f6d7c8b9a created", "revision 2", "low", "x"),
        (at(-3000), "pod", f"pod/shop/{p}", "waiting CrashLoopBackOff", "x", "high", "x"),
    ])
    events = normalise_events([ev("b1", "BackOff", pod(p), "Back-off restarting failed container", 120, 5)])
    found = outage.run_detectors(events, state, None, T0, END)
    assert "rollout.crashloop" in set(found["check"]) and "pod.crashloop" not in set(found["check"])


def _cert(t: pd.Timestamp, obj: str = "secret/legacy/old-tls") -> tuple[Any, ...]:
    return (t, "certificate", obj, "certificate expires", "CN=old.example.com (tls.crt)", "info", "openssl")


def test_certificate_expired_400_days_ago_is_standing_and_never_outranks_an_in_window_cause() -> None:
    p = "web-5f6d7c8b9a-qwert"
    state = rows(
        [
            _cert(T0 - pd.Timedelta(days=400)),
            (at(60), "rollout", "deployment/shop/web", "ReplicaSet web-5f6d7c8b9a created", "revision 7", "low", "x"),
        ]
    )
    events = normalise_events([ev("b1", "BackOff", pod(p), "Back-off restarting failed container", 90, 4)])
    found = outage.run_detectors(events, state, None, T0, END)
    assert list(found["check"]) == ["rollout.crashloop", "certificate.expiry"]
    cert = found.iloc[1]
    assert (cert["kind"], cert["severity"], cert["rank"]) == ("standing", "medium", 2)
    assert cert["message"].startswith("Standing problem") and "400 days before the window" in cert["message"]
    # alone (a quiet window) it is still listed, and nothing is a likely cause at high or above
    quiet = outage.run_detectors(normalise_events([]), rows([_cert(T0 - pd.Timedelta(days=400))]), None, T0, END)
    assert list(quiet["kind"]) == ["standing"] and not quiet["severity"].isin(["high", "critical"]).any()
    assert outage.summary(quiet) == {"causes": 0, "standing": 1, "top": None}


def test_certificate_expired_just_before_or_inside_the_window_is_a_cause() -> None:
    inside = outage.detect_certificate_expiry(normalise_events([]), rows([_cert(at(120))]), T0, END)
    before = outage.detect_certificate_expiry(normalise_events([]), rows([_cert(at(-600))]), T0, END)
    assert [(f["severity"], f["score"], f["data"]["standing"]) for f in inside] == [("critical", 85, False)]
    # 10 min before the window, within the 15 min lead: still a cause, scored 10 points lower
    assert [(f["severity"], f["score"], f["data"]["standing"]) for f in before] == [("critical", 75, False)]


def test_two_causes_rank_by_time_and_noise_comes_last() -> None:
    p = "api-6c8d9f7b4c-ccccc"
    state = rows(
        [
            *node_state(VICTIM, 300),  # lost at +300 s
            (at(OLD), "pod", "pod/shop/web-7d9f8c6b5d-aaaaa", "created", f"on node {VICTIM}", "info", "x"),
            (at(100), "rollout", "deployment/shop/api", "ReplicaSet api-6c8d9f7b4c created", "revision 4", "low", "x"),
        ]
    )
    events = normalise_events(
        [
            ev("b1", "BackOff", pod(p), "Back-off restarting failed container", 130, 5),
            ev(
                "m1",
                "TaintManagerEviction",
                pod("web-7d9f8c6b5d-aaaaa"),
                "Marking for deletion Pod shop/web-7d9f8c6b5d-aaaaa",
                650,
            ),
            ev("n2", "NodeNotReady", {"kind": "Node", "name": OTHER}, "NodeNotReady", 20),
        ]
    )
    found = outage.run_detectors(events, state, None, T0, END)
    assert list(zip(found["check"], found["kind"], found["time"], strict=True)) == [
        ("rollout.crashloop", "cause", at(100)),  # first cause: the rollout at +100 s
        ("node.lost", "cause", at(300)),  # second cause: the node lost at +300 s, though it scores higher
        ("node.lost", "noise", at(20)),  # the flap of the other node
    ]


def _metrics(series: dict[tuple[str, str, str], list[float]], step_s: int = 60) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame(
                {"time": [at(step_s * i) for i in range(len(v))], "namespace": ns, "metric": m, "id": i_d, "value": v}
            )
            for (ns, m, i_d), v in series.items()
        ],
        ignore_index=True,
    )


def test_consumer_stalled_queue_grows_while_acks_are_zero() -> None:
    m = _metrics(
        {
            ("RabbitMQ", "MessagesReady", "MessagesReady(TaxiPosition)"): [10, 12, 11, 10, 40, 80, 120, 160, 200, 240],
            ("RabbitMQ", "AckRate", "AckRate(TaxiPosition)"): [50, 52, 49, 51, 0, 0, 0, 0, 0, 0],
        }
    )
    owners = {"MessagesReady(TaxiPosition)": "taxi/position-consumer"}
    found = outage.run_detectors(normalise_events([]), rows([]), m, T0, END, owners=owners)
    top = found.iloc[0]
    # base = median(10, 12, 11) = 11, peak 240: threshold 11 + 0.2 * 229 = 56.8, first sustained above at #5
    assert (top["check"], top["object"], top["kind"]) == (
        "consumer.stalled",
        "deployment/taxi/position-consumer",
        "cause",
    )
    assert top["time"] == at(240)  # the first zero of AckRate
    assert top["data"]["backlog_onset"] == at(300)
    assert "rollout restart deployment/position-consumer" in top["message"]
    # a queue that grows while the consumer keeps acking is not stalled
    busy = m.assign(value=m["value"].where(m["metric"] != "AckRate", 50))
    assert outage.detect_consumer_stalled(busy, owners) == []


def _instances(zones: dict[str, str], terminated: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instance_id": [f"i-{i:017x}" for i in range(len(zones))],
            "instance_type": "t2.medium",
            "state": ["terminated" if n in terminated else "running" for n in zones],
            "private_dns": list(zones),
            "zone": list(zones.values()),
        }
    )


def test_zone_outage_is_one_cause_not_one_per_node() -> None:
    n1, n2, n3 = "ip-10-0-0-1.ec2.internal", "ip-10-0-0-2.ec2.internal", "ip-10-0-32-1.ec2.internal"
    inst = _instances({n1: "eu-central-1a", n2: "eu-central-1a", n3: "eu-central-1b"})
    state = rows([*node_state(n1, 0), *node_state(n2, 1)])
    events = normalise_events(
        [
            ev(
                "m1",
                "TaintManagerEviction",
                pod("web-7d9f8c6b5d-aaaaa"),
                "Marking for deletion Pod shop/web-7d9f8c6b5d-aaaaa",
                60,
            ),
        ]
    )
    state = pd.concat(
        [state, rows([(at(OLD), "pod", "pod/shop/web-7d9f8c6b5d-aaaaa", "created", f"on node {n2}", "info", "x")])],
        ignore_index=True,
    )
    found = outage.run_detectors(events, state, None, T0, END, inst)
    assert list(found["check"]) == ["zone.outage"]
    z = found.iloc[0]
    assert (z["object"], z["time"], z["severity"]) == ("zone/eu-central-1a", T0, "critical")
    assert z["data"]["nodes"] == [n1, n2] and z["data"]["evicted_pods"] == ["shop/web-7d9f8c6b5d-aaaaa"]
    assert "FullDisruption" in z["message"] and "eu-central-1b" in z["message"]
    # one node of a two-node zone is a node loss, not a zone outage
    one = outage.run_detectors(events, rows(node_state(n1, 0)), None, T0, END, inst)
    assert list(one["check"]) == ["node.lost"]


def test_ec2_death_merges_the_termination_into_the_node_loss() -> None:
    inst = _instances({VICTIM: "eu-central-1a", OTHER: "eu-central-1b"}, terminated=(VICTIM,))
    iid = inst["instance_id"].iloc[0]
    state = rows(
        [
            *node_state(VICTIM, 2),
            (at(0), "ec2", f"instance/{iid}", "instance terminated", f"nodes {VICTIM}: User initiated", "high", "aws"),
            (at(OLD), "pod", "pod/shop/web-7d9f8c6b5d-aaaaa", "created", f"on node {VICTIM}", "info", "x"),
        ]
    )
    events = normalise_events(
        [
            ev(
                "m1",
                "TaintManagerEviction",
                pod("web-7d9f8c6b5d-aaaaa"),
                "Marking for deletion Pod shop/web-7d9f8c6b5d-aaaaa",
                60,
            )
        ]
    )
    found = outage.run_detectors(events, state, None, T0, END, inst)
    assert list(found["check"]) == ["node.lost"]
    f = found.iloc[0]
    assert (f["object"], f["time"], f["data"]["instance_id"]) == (f"node/{VICTIM}", T0, iid)
    assert f["message"].startswith(f"EC2 death: instance {iid} was terminated")
    assert "aws" in f["evidence"] and f"kubectl describe node {VICTIM}" in f["evidence"]


def _rs(name: str, created: dt.datetime, updated: dt.datetime, replicas: int) -> k8s.V1ReplicaSet:
    return k8s.V1ReplicaSet(
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace="shop",
            creation_timestamp=created,
            annotations={"deployment.kubernetes.io/revision": "5", "deployment.kubernetes.io/revision-history": "2"},
            owner_references=[k8s.V1OwnerReference(api_version="apps/v1", kind="Deployment", name="web", uid="u")],
            managed_fields=[
                k8s.V1ManagedFieldsEntry(manager="kube-controller-manager", operation="Update", time=updated),
                k8s.V1ManagedFieldsEntry(
                    manager="kube-controller-manager",
                    operation="Update",
                    subresource="status",
                    time=updated + dt.timedelta(minutes=9),
                ),
            ],
        ),
        spec=k8s.V1ReplicaSetSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels={"app": "web"}),
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="web", image="web:1.9")])
            ),
        ),
    )


def test_rollout_evidence_sees_a_replicaset_reused_by_a_rollback() -> None:
    created = dt.datetime(2024, 4, 28, 9, 0, tzinfo=dt.UTC)
    rollback = dt.datetime(2024, 5, 1, 12, 1, tzinfo=dt.UTC)
    df = rollout_evidence([_rs("web-5f6d7c8b9a", created, rollback, 3), _rs("web-old", created, rollback, 0)])
    got = list(zip(df["time"], df["what"], strict=True))
    assert got == [
        (pd.Timestamp(created), "ReplicaSet web-5f6d7c8b9a created"),
        (pd.Timestamp(created), "ReplicaSet web-old created"),
        # the status write 9 minutes later is not a rollout; a ReplicaSet scaled to 0 gained nothing
        (pd.Timestamp(rollback), "ReplicaSet web-5f6d7c8b9a scaled up"),
    ]
    assert df["detail"].iloc[2] == "revision 5: web:1.9 (earlier revisions 2)"


def test_evictions_from_a_deleted_node_when_other_nodes_flapped_and_came_back() -> None:
    # EC2 death: the node and its pods are gone from the state; another node flapped and is Ready again
    p = "web-7d9f8c6b5d-aaaaa"
    events = normalise_events(
        [
            ev("n1", "NodeNotReady", {"kind": "Node", "name": VICTIM}, "NodeNotReady", 12),
            ev("n2", "NodeNotReady", {"kind": "Node", "name": OTHER}, "NodeNotReady", 12),
            ev("m1", "TaintManagerEviction", pod(p), f"Marking for deletion Pod shop/{p}", 25),
        ]
    )
    state = rows([(at(30), "node", f"node/{OTHER}", "Ready=True", "KubeletReady", "info", "x")])
    found = outage.run_detectors(events, state, None, T0, END)
    top = found.iloc[0]
    assert (top["object"], top["kind"], top["data"]["evicted_pods"]) == (f"node/{VICTIM}", "cause", [f"shop/{p}"])
    assert top["time"] == at(12)  # no heartbeat row left: NotReady is the earliest known moment


def test_a_cancelled_eviction_of_a_pod_that_is_deleted_anyway_still_counts() -> None:
    # the pod was marked, then a rollout deleted it and the taint manager cancelled its work: the pod is
    # Terminating on the lost node, it lost its place there all the same
    p = "web-7d9f8c6b5d-aaaaa"
    events = normalise_events(
        [
            ev("m1", "TaintManagerEviction", pod(p), f"Marking for deletion Pod shop/{p}", 60),
            ev("c1", "TaintManagerEviction", pod(p), f"Cancelling deletion of Pod shop/{p}", 70),
        ]
    )
    state = rows(
        [
            *node_state(VICTIM, 0),
            (at(OLD), "pod", f"pod/shop/{p}", "created", f"on node {VICTIM}", "info", "x"),
            (at(70), "pod", f"pod/shop/{p}", "deleting", f"on node {VICTIM}", "medium", "x"),
        ]
    )
    top = outage.run_detectors(events, state, None, T0, END).iloc[0]
    assert (top["object"], top["data"]["evicted_pods"]) == (f"node/{VICTIM}", [f"shop/{p}"])


def _apiserver_started(t: float) -> tuple[Any, ...]:
    return (at(t), "control-plane", "controlplane/kube-apiserver", "kube-apiserver started",
            "process_start_time_seconds", "high", "GET /metrics")  # fmt: skip


def test_an_apiserver_restart_under_old_workloads_is_a_cause() -> None:
    """The master restarted 5 min into the window; the shop's pods were created 3 h before: a restart, rank 1."""
    state = rows([(at(OLD), "pod", "pod/shop/web-7d9f8c6b5d-aaaaa", "created", f"on node {VICTIM}", "info", "x"),
                  _apiserver_started(300)])  # fmt: skip
    found = outage.run_detectors(normalise_events([]), state, None, T0, END)
    top = found.iloc[0]
    assert (top["check"], top["object"], top["time"], top["rank"]) == (
        "control-plane.restart", "controlplane/kube-apiserver", at(300), 1)


def test_the_first_start_of_a_new_cluster_is_not_a_restart() -> None:
    """A cluster (or sandbox) brought up 5 min into the window: every object is younger than its API server.

    Nothing can be created before the API server first starts, so this start explains nothing; it was
    ranked the #1 likely cause of the onboarding game day on a sandbox started minutes before.
    """
    state = rows([_apiserver_started(300),
                  (at(310), "pod", "pod/shop/web-7d9f8c6b5d-aaaaa", "created", f"on node {VICTIM}", "info", "x")])
    events = normalise_events([ev("u1", "Scheduled", pod("web-7d9f8c6b5d-aaaaa"), f"assigned to {VICTIM}", 311)])
    found = outage.run_detectors(events, state, None, T0, END)
    assert found.empty or "control-plane.restart" not in set(found["check"]), found[["check", "object"]]
    assert outage.detect_control_plane_restart(events, state, T0, END) == []
    # the same start with one event first seen an hour earlier (the history the runbook reads): a restart
    older = normalise_events([ev("u0", "Pulled", pod("web-7d9f8c6b5d-zzzzz"), "pulled", -3600)])
    again = outage.detect_control_plane_restart(events, state, T0, END, history_events=older)
    assert [(f["check"], f["time"]) for f in again] == [("control-plane.restart", at(300))]
