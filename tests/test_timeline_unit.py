"""Pure functions of the outage analysis, with hand-computed expected values (no servers)."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from opsbook.analysis import outage, postmortem, timeline
from opsbook.aws.evidence import MetricSpec, parse_metric_spec
from opsbook.errors import BadInput
from opsbook.k8s.events import merge_repeats, normalise_events
from opsbook.k8s.evidence import rows
from opsbook.plots.timeline import swimlanes

T0 = pd.Timestamp("2024-05-01T00:00:00Z")


def ts(seconds: float) -> str:
    return (T0 + pd.Timedelta(seconds=seconds)).isoformat()


def core_event(
    uid: str,
    reason: str,
    obj: dict,
    message: str,
    *,
    event_time=None,
    last=None,
    first=None,
    created=None,
    series=None,
    count=None,
    kind_type="Normal",
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "uid": uid,
            "name": f"{obj['name']}.{uid}",
            "namespace": obj.get("namespace") or "default",
            "creationTimestamp": created or ts(0),
        },
        "involvedObject": obj,
        "reason": reason,
        "message": message,
        "type": kind_type,
        "eventTime": event_time,
        "lastTimestamp": last,
        "firstTimestamp": first,
        "series": series,
        "count": count,
        "source": {"component": "node-controller"},
    }


POD = {"kind": "Pod", "namespace": "shop", "name": "web-7d9f8c6b5d-abcde"}
NODE = {"kind": "Node", "name": "ip-10-0-0-1.ec2.internal"}


def test_event_time_fallback_order_of_design_md() -> None:
    evs = [
        core_event("a", "Scheduled", POD, "m", event_time=ts(10), last=ts(99), created=ts(98)),
        core_event("b", "BackOff", POD, "m", series={"count": 4, "lastObservedTime": ts(20)}, last=ts(99)),
        core_event("c", "Killing", POD, "m", last=ts(30), first=ts(25), count=2, created=ts(98)),
        core_event("d", "Pulled", POD, "m", created=ts(40)),
    ]
    df = normalise_events(evs).set_index("uid")
    assert df.loc["a", "time"] == T0 + pd.Timedelta(seconds=10)
    assert df.loc["b", "time"] == T0 + pd.Timedelta(seconds=20) and df.loc["b", "count"] == 4
    assert df.loc["c", "time"] == T0 + pd.Timedelta(seconds=30) and df.loc[
        "c", "first_time"
    ] == T0 + pd.Timedelta(seconds=25)
    assert df.loc["d", "time"] == T0 + pd.Timedelta(seconds=40)
    assert df.loc["a", "object"] == "pod/shop/web-7d9f8c6b5d-abcde"


def test_events_v1_shape_and_the_same_event_from_both_apis_kept_once() -> None:
    v1 = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"uid": "u1", "name": "n.1", "namespace": "default", "creationTimestamp": ts(0)},
        "regarding": NODE,
        "note": "Node ip-10-0-0-1.ec2.internal status is now: NodeNotReady",
        "reason": "NodeNotReady",
        "type": "Normal",
        "eventTime": None,
        "deprecatedLastTimestamp": ts(50),
        "deprecatedFirstTimestamp": ts(5),
        "deprecatedCount": 3,
        "reportingController": "node-controller",
    }
    core = core_event("u1", "NodeNotReady", NODE, v1["note"], last=ts(50), first=ts(5), count=3)
    df = normalise_events([v1, core])
    assert len(df) == 1
    r = df.iloc[0]
    assert r["object"] == "node/ip-10-0-0-1.ec2.internal"  # cluster-scoped: no namespace
    assert (r["count"], r["time"], r["first_time"]) == (
        3,
        T0 + pd.Timedelta(seconds=50),
        T0 + pd.Timedelta(seconds=5),
    )
    assert r["component"] == "node-controller"


def test_merge_repeats_sums_counts() -> None:
    evs = [
        core_event(
            "a", "BackOff", POD, "Back-off restarting failed container", last=ts(60), first=ts(0), count=2
        ),
        core_event(
            "b", "BackOff", POD, "Back-off restarting failed container", last=ts(120), first=ts(90), count=3
        ),
    ]
    m = merge_repeats(normalise_events(evs))
    assert len(m) == 1
    assert (m.iloc[0]["count"], m.iloc[0]["first_time"], m.iloc[0]["time"]) == (
        5,
        T0,
        T0 + pd.Timedelta(seconds=120),
    )


def _tl_rows(recs) -> pd.DataFrame:
    df = rows(
        [
            (T0 + pd.Timedelta(seconds=s), src, obj, what, det, sev, "ev")
            for s, src, obj, what, det, sev in recs
        ]
    )
    df["last_time"], df["count"] = df["time"], 1
    return df[timeline.TIMELINE_COLUMNS]


def test_collapse_groups_pods_of_one_replicaset_within_the_gap() -> None:
    df = _tl_rows(
        [
            (
                0,
                "event",
                "pod/shop/web-7d9f8c6b5d-aaaaa",
                "TaintManagerEviction",
                "Marking for deletion Pod a",
                "high",
            ),
            (
                1,
                "event",
                "pod/shop/web-7d9f8c6b5d-bbbbb",
                "TaintManagerEviction",
                "Marking for deletion Pod b",
                "high",
            ),
            (
                2,
                "event",
                "pod/shop/web-7d9f8c6b5d-ccccc",
                "TaintManagerEviction",
                "Marking for deletion Pod c",
                "medium",
            ),
            (
                200,
                "event",
                "pod/shop/web-7d9f8c6b5d-ddddd",
                "TaintManagerEviction",
                "Marking for deletion Pod d",
                "low",
            ),
            (1, "node", "node/n1", "Ready=Unknown", "x", "high"),
        ]
    )
    out = timeline.collapse(df, pd.Timedelta(seconds=30))
    assert len(out) == 3
    first = out.iloc[0]
    assert first["object"] == "pod/shop/web-7d9f8c6b5d-* (3)" and first["count"] == 3
    assert first["severity"] == "high" and first["detail"] == "Marking for deletion Pod a (+2 more)"
    assert first["last_time"] == T0 + pd.Timedelta(seconds=2)
    assert out.iloc[2]["object"] == "pod/shop/web-7d9f8c6b5d-ddddd" and out.iloc[2]["count"] == 1
    assert out["time"].is_monotonic_increasing


def test_incident_window_is_validated_without_any_call() -> None:
    now = pd.Timestamp("2024-05-01T12:00:00Z")
    inc = timeline.incident(
        last_hours=2, now=now, alerts={"first_alert": "2024-05-01T11:00:00Z", "resolved": ""}
    )
    assert (inc.start, inc.end) == (pd.Timestamp("2024-05-01T10:00Z"), now)
    assert inc.alerts == {"first_alert": pd.Timestamp("2024-05-01T11:00Z")}
    naive = timeline.incident("2024-05-01 09:00", "2024-05-01 10:00", now=now)
    assert naive.start == pd.Timestamp("2024-05-01T09:00Z")  # naive = UTC
    with pytest.raises(BadInput, match="before it starts"):
        timeline.incident("2024-05-01T10:00Z", "2024-05-01T09:00Z", now=now)
    with pytest.raises(BadInput, match="future"):
        timeline.incident("2024-05-02T10:00Z", "2024-05-02T11:00Z", now=now)
    with pytest.raises(BadInput, match="not an ISO-8601"):
        timeline.incident("yesterday", now=now)
    with pytest.raises(BadInput, match="give a window"):
        timeline.incident(now=now)
    with pytest.raises(BadInput, match="out of order"):
        timeline.incident(
            last_hours=1,
            now=now,
            alerts={"first_alert": "2024-05-01T11:30Z", "acknowledged": "2024-05-01T11:00Z"},
        )
    with pytest.raises(BadInput, match="not one of"):
        timeline.incident(last_hours=1, now=now, alerts={"paged": "2024-05-01T11:30Z"})


def test_metric_spec_parsing() -> None:
    assert parse_metric_spec("AWS/SQS/ApproximateNumberOfMessagesVisible:QueueName=orders") == MetricSpec(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders"}, "Average"
    )
    assert parse_metric_spec("Custom/RabbitMQ/QueueDepth:Queue=a,Vhost=b:Maximum").dimensions == {
        "Queue": "a",
        "Vhost": "b",
    }
    for bad in ("QueueDepth", "/x", "A/B:NoEquals", "A/B:Q=1:Median"):
        with pytest.raises(BadInput):
            parse_metric_spec(bad)


def _metrics(series: dict[tuple[str, str, str], list[float]], step_s: int = 300) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {
                "time": [T0 + pd.Timedelta(seconds=step_s * i) for i in range(len(v))],
                "namespace": ns,
                "metric": m,
                "id": i_d,
                "value": v,
            }
        )
        for (ns, m, i_d), v in series.items()
    ]
    return pd.concat(parts, ignore_index=True)


def test_credit_exhaustion_then_backlog_growth() -> None:
    m = _metrics(
        {
            ("AWS/EC2", "CPUCreditBalance", "i-1"): [30, 20, 10, 0, 0, 0, 0, 0, 0, 0],
            ("AWS/EC2", "CPUUtilization", "i-1"): [90, 90, 90, 10, 10.5, 9.5, 10, 10, 10, 10],
            ("Custom/Q", "Depth", "Depth(q)"): [5, 5, 5, 5, 5, 6, 100, 200, 300, 400],
        }
    )
    ex = outage.credit_exhaustion(m).iloc[0]
    assert ex["zero_at"] == T0 + pd.Timedelta(minutes=15) and ex["cpu_flat"] and ex["cpu_level"] == 10
    g = outage.growth(m).iloc[0]
    # base = median of the first 3 points = 5; threshold 5 + 0.2 * (400 - 5) = 84: first sustained above at #6
    assert g["onset"] == T0 + pd.Timedelta(minutes=30) and (g["base"], g["peak"]) == (5, 400)
    found = outage.detect_cpu_credits(m)
    assert len(found) == 1 and found[0]["data"]["backlog_onset"] == g["onset"]
    assert found[0]["score"] == 85 and "precedes the growth of Depth" in found[0]["message"]
    # unlimited mode: the balance never reaches zero, no finding
    m2 = _metrics({("AWS/EC2", "CPUCreditBalance", "i-2"): [30, 20, 10, 5, 5, 5]})
    assert outage.detect_cpu_credits(m2) == []


def _ev(uid, reason, obj, message, t, count=1):
    return core_event(uid, reason, obj, message, last=ts(t), first=ts(t), count=count)


def test_node_lost_ranks_the_node_with_evictions_first_with_actual_delays() -> None:
    victim, flapper = "ip-10-0-0-1.ec2.internal", "ip-10-0-0-2.ec2.internal"
    rs = {"kind": "ReplicaSet", "namespace": "shop", "name": "web-7d9f8c6b5d"}
    new_pod = {"kind": "Pod", "namespace": "shop", "name": "web-7d9f8c6b5d-zzzzz"}
    evs = [
        core_event(
            "s1",
            "Scheduled",
            POD,
            f"Successfully assigned shop/{POD['name']} to {victim}",
            event_time=ts(-600),
        ),
        _ev(
            "n1",
            "NodeNotReady",
            {"kind": "Node", "name": victim},
            f"Node {victim} status is now: NodeNotReady",
            40,
        ),
        _ev(
            "n2",
            "NodeNotReady",
            {"kind": "Node", "name": flapper},
            f"Node {flapper} status is now: NodeNotReady",
            41,
        ),
        _ev("e1", "TaintManagerEviction", POD, f"Marking for deletion Pod shop/{POD['name']}", 340),
        _ev("c1", "SuccessfulCreate", rs, f"Created pod: {new_pod['name']}", 340),
        core_event(
            "s2",
            "Scheduled",
            new_pod,
            f"Successfully assigned shop/{new_pod['name']} to {flapper}",
            event_time=ts(341),
        ),
    ]
    events = normalise_events(evs)
    state = rows(
        [
            (T0, "node", f"node/{victim}", "heartbeat stopped", "lease", "high", "x"),
            (T0 + pd.Timedelta(seconds=40), "node", f"node/{victim}", "Ready=Unknown", "x", "high", "x"),
            (
                T0 + pd.Timedelta(seconds=40),
                "node",
                f"node/{victim}",
                "taint node.kubernetes.io/unreachable:NoExecute",
                "x",
                "high",
                "x",
            ),
        ]
    )
    found = outage.run_detectors(
        events, state, None, T0 - pd.Timedelta(minutes=20), T0 + pd.Timedelta(hours=1)
    )
    top = found.iloc[0]
    assert (top["rank"], top["check"], top["object"], top["severity"]) == (
        1,
        "node.lost",
        f"node/{victim}",
        "critical",
    )
    d = top["data"]
    assert (d["delay_not_ready_s"], d["delay_taint_s"], d["delay_evict_s"], d["delay_replace_s"]) == (
        40,
        0,
        300,
        1,
    )
    assert (
        d["evictions"] == 1 and "configured toleration 300 s" in top["message"] and flapper in top["message"]
    )
    second = found[found["object"] == f"node/{flapper}"].iloc[0]
    assert second["severity"] == "low" and second["rank"] > 1 and "a brief flap" in second["message"]


def test_crash_loop_after_rollout() -> None:
    pod = {"kind": "Pod", "namespace": "shop", "name": "web-5f6d7c8b9a-qwert"}
    events = normalise_events(
        [_ev("b1", "BackOff", pod, "Back-off restarting failed container app in pod x", 90, 7)]
    )
    state = rows(
        [
            (
                T0 + pd.Timedelta(seconds=30),
                "rollout",
                "deployment/shop/web",
                "ReplicaSet web-5f6d7c8b9a created",
                "revision 7: shop/web:2.0",
                "low",
                "kubectl -n shop rollout history deployment/web",
            )
        ]
    )
    f = outage.detect_crashloop_after_rollout(events, state)
    assert len(f) == 1 and f[0]["object"] == "deployment/shop/web"
    assert "60 s after the rollout" in f[0]["message"] and "rollout undo deployment/web" in f[0]["message"]
    # a crash two hours after the rollout is not blamed on it
    late = normalise_events([_ev("b2", "BackOff", pod, "Back-off restarting failed container app", 7300)])
    assert outage.detect_crashloop_after_rollout(late, state) == []


def test_certificate_expiry_and_x509_errors() -> None:
    start, end = T0, T0 + pd.Timedelta(hours=1)
    certs = rows(
        [
            (
                T0 + pd.Timedelta(minutes=30),
                "certificate",
                "Certificate/kube-apiserver/x:443",
                "certificate expires",
                "CN=kube-apiserver",
                "info",
                "openssl ...",
            )
        ]
    )
    f = outage.detect_certificate_expiry(normalise_events([]), certs, start, end)
    assert [x["severity"] for x in f] == ["critical"]
    soon = certs.assign(time=end + pd.Timedelta(days=10))
    assert [
        x["severity"] for x in outage.detect_certificate_expiry(normalise_events([]), soon, start, end)
    ] == ["medium"]
    x509 = _ev("x", "FailedMount", POD, "x509: certificate has expired or is not yet valid", 60)
    errs = normalise_events([x509 | {"type": "Warning"}])
    f2 = outage.detect_certificate_expiry(errs, rows([]), start, end)
    assert len(f2) == 1 and f2[0]["severity"] == "critical"


def test_asg_termination_linked_to_the_lost_node() -> None:
    ev = rows(
        [
            (
                T0 + pd.Timedelta(seconds=5),
                "asg",
                "asg/nodes.c",
                "instance terminated",
                "Terminating EC2 instance: i-0123456789abcdef0. Cause: health check failed",
                "high",
                "aws ...",
            )
        ]
    )
    inst = pd.DataFrame(
        {
            "instance_id": ["i-0123456789abcdef0"],
            "private_dns": ["ip-10-0-0-1.ec2.internal"],
            "instance_type": ["t3.medium"],
        }
    )
    f = outage.detect_asg_termination(
        ev, inst, T0, T0 + pd.Timedelta(hours=1), {"ip-10-0-0-1.ec2.internal"}
    )
    assert len(f) == 1 and f[0]["severity"] == "critical" and f[0]["score"] == 90
    assert "This is why the node was lost" in f[0]["message"]
    assert (
        outage.detect_asg_termination(ev, inst, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(hours=1))
        == []
    )


def test_response_times_of_the_teams_rabbitmq_postmortem() -> None:
    # "00:10 queue growing; 00:31 PagerDuty alert; ... 01:30 plan upgraded; 01:40 everything normal"
    inc = timeline.incident(
        "2024-05-01T00:00Z",
        "2024-05-01T02:00Z",
        now=pd.Timestamp("2024-05-02T00:00Z"),
        title="TaxiPosition backlog",
        alerts={
            "first_alert": "2024-05-01T00:31Z",
            "acknowledged": "2024-05-01T00:35Z",
            "mitigated": "2024-05-01T01:30Z",
            "resolved": "2024-05-01T01:40Z",
        },
    )
    rt = postmortem.response_times(inc, pd.Timestamp("2024-05-01T00:10Z")).set_index("measure")["minutes"]
    assert list(rt) == [21, 4, 80, 90]
    findings = pd.DataFrame(
        [
            {
                "rank": 1,
                "check": "cpu.credits",
                "severity": "high",
                "time": pd.Timestamp("2024-05-01T00:10Z"),
                "object": "instance/i-1",
                "message": "CPU credits exhausted.",
                "evidence": "CloudWatch",
                "score": 85.0,
                "data": {},
            }
        ]
    )
    tl = timeline.build_timeline(None, [], inc)
    md = postmortem.draft(inc, tl, findings, ["CloudWatch alarm history unavailable"])
    assert md.startswith("# Post-mortem: TaxiPosition backlog")
    for section in (
        "## Summary",
        "## Impact",
        "## Trigger and likely causes",
        "## Detection",
        "## Resolution",
        "## Timeline (UTC)",
        "## What went well",
        "## What went badly",
        "## Where we got lucky",
        "## Action items",
        "## Evidence not available",
    ):
        assert section in md
    assert "| TTD (time to detect) | impact began 00:10:00Z | first alert 00:31:00Z | 21 |" in md
    assert "| 00:31:00 | alert | `Incident` | first alert |" in md


def test_swimlanes_draws_lanes_and_metric_panels() -> None:
    df = _tl_rows(
        [(0, "event", "node/n1", "NodeNotReady", "x", "high"), (60, "pod", "pod/a/b", "created", "y", "info")]
    )
    m = _metrics({("AWS/EC2", "CPUCreditBalance", "i-1"): [3, 2, 1], ("Custom/Q", "Depth", "q"): [1, 2, 3]})
    fig = swimlanes(df, m, (T0, T0 + pd.Timedelta(minutes=10)), {"first_alert": T0 + pd.Timedelta(minutes=2)})
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["event · node/n1", "pod · pod/a/b"]


def test_collapse_keeps_runs_of_interleaved_keys_apart() -> None:
    df = _tl_rows(
        [
            (
                200,
                "event",
                "node/b",
                "NodeNotReady",
                "x",
                "high",
            ),  # key B seen first, and later than A's rows
            (0, "event", "node/a", "NodeNotReady", "x", "high"),
            (100, "event", "node/a", "NodeNotReady", "x", "high"),  # 100 s after: a new run with a 30 s gap
            (110, "event", "node/a", "NodeNotReady", "x", "high"),
        ]
    )
    out = timeline.collapse(df, pd.Timedelta(seconds=30))
    a = out[out["object"] == "node/a"]
    assert list(a["count"]) == [1, 2] and list(a["time"]) == [T0, T0 + pd.Timedelta(seconds=100)]
    assert a.iloc[1]["last_time"] == T0 + pd.Timedelta(seconds=110)
