"""AWS evidence about an incident: ASG activities, EC2 terminations, alarm history, metrics.

Every source is optional. An API that does not exist here (moto gap, old
region) or is denied becomes a note and the section is skipped; other sources
carry on. moto 5.2.5 returns no scaling activities and has no alarm history,
so EC2 instances in state ``terminated`` (with their state-transition reason)
are read as a second source of "EC2 death".

Metrics use ``get_metric_data`` (500 queries per call, 100,800 points per
result with ``NextToken``). CPU credit metrics exist only at 5-minute
resolution.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from opsbook.aws.asg import cluster_asg_records, cluster_instances
from opsbook.aws.cloudwatch import metric_data
from opsbook.aws.metric_specs import (
    INSTANCE_METRICS,
    STATS,
    MetricSpec,
    check_instance_metrics,
    metric_owners,
    parse_metric_spec,
)
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import AwsError, BadInput
from opsbook.report import ROW_COLUMNS as ROW_COLUMNS
from opsbook.report import object_id

__all__ = [  # the metric specs are parsed in opsbook.aws.metric_specs (pure); re-exported for notebooks
    "INSTANCE_METRICS",
    "STATS",
    "MetricSpec",
    "check_instance_metrics",
    "metric_owners",
    "parse_metric_spec",
]

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["time", "namespace", "metric", "id", "value"]
"""Columns of a metrics frame: ``time`` (UTC), ``namespace``, ``metric`` (name), ``id`` (instance id or
the extra metric's label), ``value``."""

def _rows(records: list[tuple[Any, ...]]) -> pd.DataFrame:
    df = pd.DataFrame(records, columns=ROW_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


_REASON_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s*(?:GMT|UTC)?\)")


def ec2_termination_evidence(instances: pd.DataFrame) -> pd.DataFrame:
    """Rows for terminated/stopped instances, timed by their ``StateTransitionReason`` when it has one.

    Returns:
        Rows with source ``ec2``, object ``instance/<id>``, what ``instance terminated``.
    """
    out = []
    for r in instances[instances["state"].isin(["terminated", "shutting-down", "stopped"])].itertuples():
        m = _REASON_TIME.search(str(r.state_reason))
        when = pd.Timestamp(m.group(1), tz="UTC") if m else None
        out.append(
            (
                when,
                "ec2",
                object_id("Instance", r.instance_id),
                f"instance {r.state}",
                f"{r.instance_group} {r.private_dns}: {r.state_reason}".strip(),
                "high",
                f"aws ec2 describe-instances --instance-ids {r.instance_id}",
            )
        )
    return _rows(out)


def asg_activity_evidence(
    cluster: str, start: datetime, end: datetime, region: str | None = None, asg: Any = None
) -> tuple[pd.DataFrame, list[str]]:
    """Auto Scaling activities of the cluster's ASGs in the window ("EC2 death", launches).

    Returns:
        (rows with source ``asg``, object ``asg/<name>``, what ``instance terminated``/``instance launched``/
        ``activity``, detail = description and cause; notes).
    """
    asg = asg or aws_client("autoscaling", region)
    notes: list[str] = []
    out = []
    try:
        with boundary("listing the scaling activities of the cluster's Auto Scaling groups"):
            groups = [g["AutoScalingGroupName"] for g in cluster_asg_records(cluster, region, asg)]
            for name in groups:
                for page in asg.get_paginator("describe_scaling_activities").paginate(
                    AutoScalingGroupName=name
                ):
                    for a in page["Activities"]:
                        t = a.get("StartTime")
                        if t is None or not (start <= t <= end):
                            continue
                        desc = a.get("Description", "")
                        what = (
                            "instance terminated"
                            if desc.startswith("Terminating")
                            else "instance launched"
                            if desc.startswith("Launching")
                            else "activity"
                        )
                        sev = "high" if what == "instance terminated" else "low"
                        out.append(
                            (
                                t,
                                "asg",
                                object_id("ASG", name),
                                what,
                                f"{desc}. Cause: {a.get('Cause', '')} ({a.get('StatusCode', '')})",
                                sev,
                                "aws autoscaling describe-scaling-activities --auto-scaling-group-name "
                                + name,
                            )
                        )
    except AwsError as e:  # ApiUnavailable, or moto's 500 for what it does not implement
        notes.append(f"Auto Scaling activities unavailable: {str(e)[:200]}")
    if not out and not notes:
        notes.append("no Auto Scaling activities in the window: no instance was launched or terminated by "
                     "the cluster's Auto Scaling groups")
    return _rows(out), notes


def alarm_history_evidence(
    start: datetime, end: datetime, region: str | None = None, cw: Any = None
) -> tuple[pd.DataFrame, list[str]]:
    """CloudWatch alarm state changes in the window.

    Returns:
        (rows with source ``alarm``, object ``Alarm/<name>``, what ``alarm -> ALARM`` etc.; notes).
    """
    import json

    cw = cw or aws_client("cloudwatch", region)
    out = []
    try:
        with boundary("reading CloudWatch alarm history"):
            for page in cw.get_paginator("describe_alarm_history").paginate(
                HistoryItemType="StateUpdate", StartDate=start, EndDate=end
            ):
                for h in page["AlarmHistoryItems"]:
                    try:
                        new = json.loads(h.get("HistoryData", "{}")).get("newState", {}).get("stateValue", "")
                    except ValueError:
                        new = ""
                    sev = "high" if new == "ALARM" else "info"
                    out.append(
                        (
                            h["Timestamp"],
                            "alarm",
                            object_id("Alarm", h["AlarmName"]),
                            f"alarm -> {new or '?'}",
                            h.get("HistorySummary", ""),
                            sev,
                            f"aws cloudwatch describe-alarm-history --alarm-name {h['AlarmName']}",
                        )
                    )
    except AwsError as e:  # ApiUnavailable, or moto's 500 for what it does not implement
        return _rows([]), [f"CloudWatch alarm history unavailable: {str(e).splitlines()[0][:200]}"]
    return _rows(out), []


def get_metrics(
    queries: list[tuple[str, str, dict[str, str], str, str]],
    start: datetime,
    end: datetime,
    period: int = 300,
    region: str | None = None,
    cw: Any = None,
) -> pd.DataFrame:
    """Fetch metric series with GetMetricData (:func:`opsbook.aws.cloudwatch.metric_data`).

    Args:
        queries: ``(namespace, name, dimensions, stat, id)`` tuples; ``id`` labels the series.
        start: window start.
        end: window end.
        period: seconds (CPU credit metrics: 300).
        region: AWS region.
        cw: CloudWatch client.

    Returns:
        DataFrame of :data:`METRIC_COLUMNS`, sorted by ``(namespace, metric, id, time)``.
    """
    cw = cw or aws_client("cloudwatch", region)
    frames: list[pd.DataFrame] = []
    series = [(ns, name, dims, stat) for ns, name, dims, stat, _ in queries]
    for i, stamps, values in metric_data(series, start, end, period, cw):
        ns, name, _dims, _stat, label = queries[i]
        if stamps:
            frames.append(pd.DataFrame({"time": pd.to_datetime(stamps, utc=True), "namespace": ns,
                                        "metric": name, "id": label, "value": values}))
    if not frames:
        return pd.DataFrame(
            {
                c: pd.Series(
                    dtype="datetime64[ns, UTC]" if c == "time" else "float64" if c == "value" else "object"
                )
                for c in METRIC_COLUMNS
            }
        )
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["namespace", "metric", "id", "time"]).reset_index(drop=True)


def instance_metrics(
    instances: pd.DataFrame,
    start: datetime,
    end: datetime,
    names: Sequence[str] = ("CPUUtilization", "CPUCreditBalance", "CPUCreditUsage"),
    region: str | None = None,
    cw: Any = None,
) -> pd.DataFrame:
    """Per-instance AWS/EC2 metrics (5-minute Average) of the given instances.

    Returns:
        Metrics frame (:data:`METRIC_COLUMNS`) with ``id`` = instance id.
    """
    check_instance_metrics(names)
    queries = [
        ("AWS/EC2", n, {"InstanceId": iid}, "Average", iid) for iid in instances["instance_id"] for n in names
    ]
    return get_metrics(queries, start, end, 300, region, cw)


def extra_metrics(
    specs: Sequence[MetricSpec],
    start: datetime,
    end: datetime,
    period: int = 60,
    region: str | None = None,
    cw: Any = None,
) -> pd.DataFrame:
    """The extra metrics (a queue depth, a latency), one series per spec, ``id`` = the spec's label."""
    queries = [(s.namespace, s.name, s.dimensions, s.stat, s.label) for s in specs]
    return get_metrics(queries, start, end, period, region, cw) if queries else get_metrics([], start, end)


def check_metrics_exist(specs: Sequence[MetricSpec], region: str | None = None, cw: Any = None) -> None:
    """Make sure each extra metric exists in CloudWatch (``list_metrics``) before reading anything.

    Raises:
        BadInput: a metric has no data in CloudWatch (with the names that do exist in that namespace).
    """
    cw = cw or aws_client("cloudwatch", region)
    for s in specs:
        with boundary(f"looking up metric {s.namespace}/{s.name}"):
            kwargs: dict[str, Any] = {"Namespace": s.namespace, "MetricName": s.name}
            if s.dimensions:
                kwargs["Dimensions"] = [{"Name": k, "Value": v} for k, v in s.dimensions.items()]
            found = cw.list_metrics(**kwargs)["Metrics"]
            if not found:
                names = sorted({m["MetricName"] for m in cw.list_metrics(Namespace=s.namespace)["Metrics"]})
                known = ", ".join(names[:20]) or "none"
                raise BadInput(
                    f"unknown metric {s.namespace}/{s.name} {s.dimensions or ''}: CloudWatch has no "
                    f"such series. Metrics in {s.namespace}: {known}"
                )


def collect_aws_evidence(
    cluster: str,
    start: datetime,
    end: datetime,
    region: str | None = None,
    extra: Sequence[MetricSpec] = (),
    metric_names: Sequence[str] = ("CPUUtilization", "CPUCreditBalance", "CPUCreditUsage"),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """All AWS evidence of the window.

    Returns:
        (rows of :data:`ROW_COLUMNS`, metrics frame of :data:`METRIC_COLUMNS`, the cluster's instances
        as :func:`opsbook.aws.asg.cluster_instances`, notes about sources that were unavailable).
    """
    notes: list[str] = []
    ec2, asg, cw = (aws_client(s, region) for s in ("ec2", "autoscaling", "cloudwatch"))
    instances = cluster_instances(cluster, region, ec2, states=None)  # terminated ones are evidence too
    activity, n1 = asg_activity_evidence(cluster, start, end, region, asg)
    alarms, n2 = alarm_history_evidence(start, end, region, cw)
    deaths = ec2_termination_evidence(instances)
    notes += n1 + n2
    frames = [f for f in (activity, alarms, deaths) if len(f)]
    evidence = pd.concat(frames, ignore_index=True) if frames else _rows([])
    metrics = [
        instance_metrics(instances[instances["state"] != "terminated"], start, end, metric_names, region, cw)
    ]
    if extra:
        metrics.append(extra_metrics(extra, start, end, 60, region, cw))
    nonempty = [m for m in metrics if len(m)]
    mdf = pd.concat(nonempty, ignore_index=True) if nonempty else metrics[0]
    if mdf.empty:
        notes.append("no CloudWatch metrics in the window: check the region, that the instances ran then, and "
                     "the IAM permission cloudwatch:GetMetricData (on the sandbox they exist only where a drill "
                     "seeded them)")
    return evidence.sort_values("time", kind="stable").reset_index(drop=True), mdf, instances, notes
