"""Outage analysis against the real sandbox: faults injected, evidence collected, causes ranked."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
from kubernetes import client as k8s

from conftest import TEST_TIMING
from k8s_helpers import deployment as _deployment
from k8s_helpers import running_pods as _running
from k8s_helpers import wait_until as _wait
from opsbook import archive as events_archive
from opsbook.analysis import outage, timeline
from opsbook.archive import archive_events, read_archive
from opsbook.aws import evidence as aws_ev
from opsbook.errors import AwsError, BadInput
from opsbook.k8s import events as k8s_events
from opsbook.k8s import evidence as k8s_ev
from opsbook.sandbox import Sandbox, faults
from opsbook.sandbox import cluster as kc
from test_outage_notebook import launch_worker

pytestmark = [pytest.mark.sandbox, pytest.mark.private_sandbox]
CONFIG = outage.Config(
    node_monitor_grace_s=TEST_TIMING.heartbeat_factor * 40, toleration_s=TEST_TIMING.unreachable_toleration_s
)








def _all_ready(core: k8s.CoreV1Api) -> bool:
    return all(
        any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        for n in core.list_node().items
    )


def _analyse(api, start, end, namespaces=None, archive=None, live=True):
    inc = timeline.incident(start, end)
    events, _ = events_archive.collect_events(
        inc.start, inc.end, api if live else None, namespaces, archive, live=live
    )
    state, _ = k8s_ev.collect_k8s_evidence(api) if live else (k8s_ev.rows([]), [])
    # the sandbox runs node failure ~30x faster than production: collapse bursts of 3 s, not 30 s
    tl = timeline.build_timeline(events, [state], inc, gap=pd.Timedelta(seconds=3))
    found = outage.run_detectors(
        events, state, pd.DataFrame(columns=aws_ev.METRIC_COLUMNS), inc.start, inc.end, config=CONFIG
    )
    return events, state, tl, found


@pytest.mark.slow
def test_node_heartbeat_stopped_is_ranked_first(sandbox: Sandbox, api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    _wait(lambda: _all_ready(core), 60, "all nodes Ready before the test")
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment("api", 3))
    pods = _wait(lambda: (r := _running(core, namespace, "api")) and len(r) == 3 and r, 60, "3 running pods")
    victim = pods[0].spec.node_name
    on_victim = {p.metadata.name for p in pods if p.spec.node_name == victim}
    start = datetime.now(UTC) - timedelta(seconds=5)
    try:
        faults.stop_heartbeat(sandbox, api, victim)

        def replaced():
            mine = core.list_namespaced_pod(namespace, label_selector="app=api").items
            gone = all(
                p.metadata.deletion_timestamp is not None for p in mine if p.metadata.name in on_victim
            )
            return (
                gone and len([p for p in _running(core, namespace, "api") if p.spec.node_name != victim]) == 3
            )

        _wait(replaced, 120, "pods evicted and replaced")
        time.sleep(1)
        # analysed during the incident, while the node is still lost (its taint is still there)
        _events, _state, tl, found = _analyse(api, start, datetime.now(UTC) + timedelta(seconds=1))
    finally:
        faults.resume_heartbeat(sandbox, api, victim)
        faults.wait_settled(api, 90)

    top = found.iloc[0]
    assert top["check"] == "node.lost" and top["object"] == f"node/{victim}", found[
        ["check", "object", "score"]
    ]
    assert top["severity"] == "critical" and top["data"]["evictions"] >= len(on_victim)
    d = top["data"]
    # real timestamps, in order: heartbeat stopped <= NotReady <= taint <= eviction <= replacement
    assert d["heartbeat"] <= d["not_ready"] <= d["tainted"] <= d["first_eviction"] <= d["replaced"]
    # the eviction came after the configured toleration (10 s), give or take the controller's 1 s resolution
    assert d["delay_evict_s"] >= CONFIG.toleration_s - 1
    assert f"configured toleration {CONFIG.toleration_s:g} s" in top["message"]
    # other nodes that flapped while kwok restarted rank below, without evictions
    assert all(
        r["data"].get("evictions", 0) == 0 for _, r in found.iloc[1:].iterrows() if r["check"] == "node.lost"
    )

    def first(source: str, obj_prefix: str, what_prefix: str) -> pd.Timestamp:
        rows = tl[
            (tl["source"] == source)
            & tl["object"].str.startswith(obj_prefix)
            & tl["what"].str.startswith(what_prefix)
        ]
        assert len(rows), f"no {source} {obj_prefix} {what_prefix} row in the timeline:\n{tl.to_string()}"
        return rows["time"].min()

    t_nr = first("event", f"node/{victim}", "NodeNotReady")
    t_taint = first("node", f"node/{victim}", "taint node.kubernetes.io/unreachable:NoExecute")
    t_evict = first("event", f"pod/{namespace}/api-", "TaintManagerEviction")
    t_create = tl[
        (tl["source"] == "event")
        & (tl["what"] == "SuccessfulCreate")
        & tl["object"].str.startswith(f"replicaset/{namespace}/api-")
    ]["time"]
    t_replace = t_create[t_create >= t_evict].min()
    # NodeNotReady events merge with earlier blips of the same node (count > 1, newest timestamp),
    # so only "before the evictions" is guaranteed for the event; the taint row comes from the node.
    assert t_nr <= t_evict and t_taint <= t_evict <= t_replace
    # the eviction row is collapsed over the victim's pods
    ev_row = tl[(tl["what"] == "TaintManagerEviction") & tl["object"].str.startswith(f"pod/{namespace}/")]
    assert ev_row["count"].sum() >= len(on_victim)
    assert "event/" in ev_row["evidence"].iloc[0]


def _heal_control_plane(sandbox: Sandbox, watch_s: float = 30) -> None:
    """kube-controller-manager and kube-scheduler exit ~10 s after losing their leader lease while the API
    server was down (as in production, where the kubelet restarts them); `up` starts what stopped, so
    the shared sandbox stays healthy for the other tests."""
    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline:
        if not all(kc.components_running(sandbox.kwok_workdir, sandbox.name).values()):
            sandbox.up(timing=TEST_TIMING)
        time.sleep(1)
    assert all(kc.components_running(sandbox.kwok_workdir, sandbox.name).values())


@pytest.mark.slow
def test_apiserver_restart_fires_control_plane_detector(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    start = datetime.now(UTC) - timedelta(seconds=2)
    try:
        timings = faults.restart_apiserver(sandbox)
    finally:
        _heal_control_plane(sandbox)
        faults.wait_settled(api, 90)
    end = datetime.now(UTC) + timedelta(seconds=1)
    _events, state, _tl, found = _analyse(api, start, end)
    cp = found[found["check"] == "control-plane.restart"]
    assert len(cp) == 1, found[["check", "object", "message"]]
    started = cp.iloc[0]["data"]["apiserver_started"]
    # the process start time read from /metrics is the real restart time
    assert abs(started.timestamp() - timings["started_at"]) < 5
    row = state[(state["source"] == "control-plane") & (state["what"] == "kube-apiserver started")]
    assert len(row) == 1 and "process_start_time_seconds" in row.iloc[0]["evidence"]
    assert cp.iloc[0]["rank"] == 1


def _credit_series(instance_id: str, start: datetime, queue: str) -> list[faults.MetricSeries]:
    step = timedelta(minutes=5)
    # balance falls 12 credits per 5 min from 144 to 0, then stays at 0; CPU 95 % then flat at 20 % (t2.micro)
    balance = [max(0.0, 144 - 12 * i) for i in range(36)]
    cpu = [95.0 if b > 0 else 20.0 + (0.3 if i % 2 else -0.3) for i, b in enumerate(balance)]
    depth = [50.0] * 16 + [50.0 + 400 * (i + 1) for i in range(20)]  # grows from 16 × 5 min = 80 min
    return [
        faults.MetricSeries("AWS/EC2", "CPUCreditBalance", {"InstanceId": instance_id}, start, step, balance),
        faults.MetricSeries(
            "AWS/EC2", "CPUUtilization", {"InstanceId": instance_id}, start, step, cpu, "Percent"
        ),
        faults.MetricSeries("Custom/RabbitMQ", "QueueDepth", {"Queue": queue}, start, step, depth),
    ]


def test_cpu_credit_exhaustion_precedes_backlog(sandbox: Sandbox) -> None:
    st = sandbox.state()
    ec2 = boto3.client("ec2", region_name=st.region)
    worker = {"instance_id": launch_worker(ec2, st.cluster_name)}  # fresh: no metrics from earlier runs
    try:
        _credit_case(st, worker)
    finally:  # a running instance without a node would make the next `sandbox up` register one
        ec2.terminate_instances(InstanceIds=[worker["instance_id"]])


def _credit_case(st, worker: dict) -> None:
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    start = start - timedelta(minutes=start.minute % 5)
    queue = f"taxi-position-{uuid.uuid4().hex[:6]}"
    assert faults.seed_metrics(_credit_series(worker["instance_id"], start, queue), st.region) == 108
    inc = timeline.incident(
        start, start + timedelta(hours=3), extra_metrics=[f"Custom/RabbitMQ/QueueDepth:Queue={queue}"]
    )
    aws_ev.check_metrics_exist(inc.extra_metrics, st.region)
    rows, metrics, inst, notes = aws_ev.collect_aws_evidence(
        st.cluster_name, inc.start, inc.end, st.region, inc.extra_metrics, inc.instance_metrics
    )
    mine = metrics[metrics["id"] == worker["instance_id"]]
    assert {"CPUCreditBalance", "CPUUtilization"} <= set(mine["metric"])
    assert any("alarm history" in n or "Auto Scaling" in n for n in notes)  # moto gaps degrade, not fail
    found = outage.run_detectors(
        k8s_events.normalise_events([]), rows, metrics, inc.start, inc.end, inst, CONFIG
    )
    credits = found[
        (found["check"] == "cpu.credits") & (found["object"] == f"instance/{worker['instance_id']}")
    ]
    assert len(credits) == 1
    f = credits.iloc[0]
    zero_at = pd.Timestamp(start + timedelta(minutes=5 * 12))  # balance 144 - 12*12 = 0 at the 13th point
    assert f["time"] == zero_at and f["data"]["cpu_flat"] and abs(f["data"]["cpu_level"] - 20) < 1
    assert f["data"]["backlog_onset"] > f["time"] and "precedes the growth of QueueDepth" in f["message"]
    tl = timeline.build_timeline(None, [rows, outage.metric_milestones(metrics)], inc)
    here = tl[
        tl["object"].str.endswith(worker["instance_id"]) | tl["object"].str.contains(queue, regex=False)
    ]
    t_credit = here[here["what"] == "CPUCreditBalance exhausted"]["time"].min()
    t_flat = here[here["what"].str.startswith("CPUUtilization flat")]["time"].min()
    t_backlog = here[here["what"] == "QueueDepth growing"]["time"].min()
    assert t_credit == zero_at and t_flat == zero_at and t_backlog > t_credit
    assert "t2.micro" in f["message"]  # the instance is named with its type


def _shift(d: dict, delta: timedelta) -> dict:
    """An event as the API returned it, moved back in time (so it is older than the API keeps)."""
    out = json.loads(json.dumps(d))
    out["metadata"]["uid"] = str(uuid.uuid4())  # a different event: the API server has expired it
    for k in (
        "eventTime",
        "firstTimestamp",
        "lastTimestamp",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
    ):
        if out.get(k):
            out[k] = (pd.Timestamp(out[k]) - delta).isoformat()
    out["metadata"]["creationTimestamp"] = (
        pd.Timestamp(out["metadata"]["creationTimestamp"]) - delta
    ).isoformat()
    if (out.get("series") or {}).get("lastObservedTime"):
        out["series"]["lastObservedTime"] = (
            pd.Timestamp(out["series"]["lastObservedTime"]) - delta
        ).isoformat()
    return out


def test_old_events_are_analysed_from_the_archive(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = k8s.CoreV1Api(api)
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment("web", 2))
    _wait(lambda: len(_running(core, namespace, "web")) == 2, 60, "2 running pods")
    # archive the real events for a few seconds, to a local directory and to S3 (moto)
    local = tmp_path / "archive"
    sink = archive_events(str(local), api, namespace=namespace, duration=3, flush_every=1)
    assert sink.written >= 5 and sink.objects
    lines = [json.loads(x) for x in Path(sink.objects[0]).read_text().splitlines()]
    assert {e["reason"] for e in lines} >= {"Scheduled", "SuccessfulCreate", "ScalingReplicaSet"}
    bucket = f"events-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3_sink = archive_events(
        f"s3://{bucket}/cluster", api, namespace=namespace, duration=2, flush_every=1, s3=s3
    )
    assert s3_sink.written == sink.written and s3_sink.objects[0].startswith(f"s3://{bucket}/cluster/events-")
    # an archive of three-hours-old events: the API server no longer has them
    delta = timedelta(hours=3)
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(_shift(e, delta)) + "\n" for e in lines))
    now = datetime.now(UTC)
    start, end = now - delta - timedelta(minutes=5), now - delta + timedelta(minutes=5)
    live, _ = events_archive.collect_events(pd.Timestamp(start), pd.Timestamp(end), api, [namespace])
    assert live.empty
    from_archive, notes = events_archive.collect_events(
        pd.Timestamp(start), pd.Timestamp(end), api, [namespace], archive=str(old)
    )
    assert len(from_archive) == len({e["metadata"]["uid"] for e in lines})
    assert set(from_archive["reason"]) >= {"Scheduled", "SuccessfulCreate", "ScalingReplicaSet"}
    assert any("read from the archive" in n for n in notes)
    assert (from_archive["time"] < pd.Timestamp(now - delta + timedelta(minutes=1))).all()
    tl = timeline.build_timeline(from_archive, [], timeline.incident(start, end))
    assert "ScalingReplicaSet" in set(tl["what"]) and tl["time"].is_monotonic_increasing
    # and S3 archives read back the same way
    assert (
        len(
            read_archive(
                f"s3://{bucket}/cluster", now - timedelta(minutes=5), now + timedelta(minutes=1), s3=s3
            )
        )
        == s3_sink.written
    )


def test_bad_window_is_refused_before_any_api_call(sandbox: Sandbox) -> None:
    now = datetime.now(UTC)
    with pytest.raises(BadInput, match="before it starts"):
        timeline.incident(now - timedelta(hours=1), now - timedelta(hours=2))
    with pytest.raises(BadInput, match="in the future"):
        timeline.incident(now + timedelta(hours=1), now + timedelta(hours=2))
    with pytest.raises(BadInput, match="Did you mean 'CPUUtilization'"):
        timeline.incident(last_hours=1, instance_metrics=["CPUUtilisation"])
    with pytest.raises(BadInput, match="Namespace/MetricName"):
        timeline.incident(last_hours=1, extra_metrics=["QueueDepth"])
    # a well-formed metric that CloudWatch does not have: refused by the look-up, before any data is read
    st = sandbox.state()
    inc = timeline.incident(last_hours=1, extra_metrics=["Custom/Nope/NoSuchMetric:Queue=x"])
    with pytest.raises(BadInput, match="unknown metric Custom/Nope/NoSuchMetric"):
        aws_ev.check_metrics_exist(inc.extra_metrics, st.region)
    # and "before any API call" holds: a CloudWatch client pointed at a closed port is never used
    dead = boto3.client("cloudwatch", region_name=st.region, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(BadInput):
        aws_ev.instance_metrics(
            pd.DataFrame({"instance_id": ["i-1"]}), now - timedelta(hours=1), now, ["CPUCredits"], cw=dead
        )
    with pytest.raises(AwsError):  # proves the dead client would have failed had it been called
        aws_ev.instance_metrics(
            pd.DataFrame({"instance_id": ["i-1"]}), now - timedelta(hours=1), now, ["CPUUtilization"], cw=dead
        )


def test_instance_terminated_in_its_asg_is_found(sandbox: Sandbox) -> None:
    st = sandbox.state()
    asg = boto3.client("autoscaling", region_name=st.region)
    ec2 = boto3.client("ec2", region_name=st.region)
    name = f"t-{uuid.uuid4().hex[:6]}.{st.cluster_name}"
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:KubernetesCluster", "Values": [st.cluster_name]}])[
        "Subnets"
    ][0]
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "t3.small",
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "KubernetesCluster", "Value": st.cluster_name},
                        {"Key": "kops.k8s.io/instancegroup", "Value": "t-asg"},
                    ],
                }
            ],
        },
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet["SubnetId"],
        Tags=[{"Key": "KubernetesCluster", "Value": st.cluster_name, "PropagateAtLaunch": True}],
    )
    start = datetime.now(UTC) - timedelta(minutes=1)
    victim = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
        "Instances"
    ][0]
    try:
        asg.terminate_instance_in_auto_scaling_group(
            InstanceId=victim["InstanceId"], ShouldDecrementDesiredCapacity=False
        )
        end = datetime.now(UTC) + timedelta(minutes=1)
        rows, _metrics, instances, _notes = aws_ev.collect_aws_evidence(
            st.cluster_name, start, end, st.region, metric_names=["CPUUtilization"]
        )
        found = outage.run_detectors(
            k8s_events.normalise_events([]),
            rows,
            _metrics,
            pd.Timestamp(start),
            pd.Timestamp(end),
            instances,
            CONFIG,
        )
        term = found[
            (found["check"] == "asg.terminated") & (found["object"] == f"instance/{victim['InstanceId']}")
        ]
        assert len(term) == 1, rows
        assert pd.Timestamp(start) <= term.iloc[0]["time"] <= pd.Timestamp(end)
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        ec2.delete_launch_template(LaunchTemplateName=name)


def test_events_archive_command(sandbox: Sandbox, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opsbook.cli import app  # the real CLI: its root group turns opsbook errors into exit codes

    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "events",
            "archive",
            "--output",
            str(tmp_path),
            "--duration",
            "2",
            "--namespace",
            "kube-system",
            "--flush-every",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    files = list(tmp_path.glob("events-*.jsonl"))
    assert len(files) == 1 and "events archived to" in res.output
    assert all(
        json.loads(x)["metadata"]["namespace"] == "kube-system" for x in files[0].read_text().splitlines()
    )
    bad = runner.invoke(app, ["events", "archive", "--output", "s3://", "--duration", "1"])
    assert bad.exit_code == 2 and "has no bucket" in bad.output
