"""The incident window and one merged, collapsed timeline (pure: DataFrames in, DataFrame out).

A timeline row says *when* (UTC), *which source* (event, node, pod, rollout,
control-plane, asg, ec2, alarm, metric, alert), *which object*, *what happened*,
a detail, how many times, a severity and the *evidence* (the command or event
that shows it). Rows of the same source, object group and "what" that follow
each other within ``gap`` are collapsed into one with a count, so 40 pods of one
ReplicaSet evicted in the same second read as one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opsbook.aws.metric_specs import MetricSpec, check_instance_metrics, parse_metric_spec
from opsbook.display import plain
from opsbook.errors import BadInput
from opsbook.report import POD_SUFFIX, SEVERITIES, SEVERITY_RANK
from opsbook.times import parse_time

if TYPE_CHECKING:
    from opsbook.analysis.outage.metrics import MetricsCache

TIMELINE_COLUMNS = [
    "time",
    "last_time",
    "source",
    "object",
    "what",
    "detail",
    "count",
    "severity",
    "evidence",
]
"""Columns of a timeline: ``time`` (first occurrence, UTC), ``last_time``, ``source``, ``object``
(``Kind/ns/name``; a collapsed group reads ``Kind/ns/prefix-* (n)``), ``what``, ``detail``, ``count``,
``severity`` (info/low/medium/high/critical), ``evidence``."""

ALERT_KEYS = ("first_alert", "acknowledged", "mitigated", "resolved")

# event reasons worth more than "info" in a timeline
_REASON_SEVERITY = {
    "NodeNotReady": "high",
    "TaintManagerEviction": "high",
    "Evicted": "high",
    "OOMKilling": "high",
    "BackOff": "high",
    "Killing": "medium",
    "FailedScheduling": "medium",
    "Unhealthy": "medium",
    "NodeNotSchedulable": "medium",
    "Rebooted": "high",
    "SystemOOM": "high",
    "NodeHasDiskPressure": "medium",
    "NodeHasInsufficientMemory": "medium",
    "FailedMount": "medium",
    "FailedCreatePodSandBox": "medium",
    "LeaderElection": "low",
    "ScalingReplicaSet": "low",
    "SuccessfulCreate": "low",
    "Scheduled": "info",
}


@dataclass(frozen=True)
class Incident:
    """What the runbook analyses: a validated UTC window, metrics to read, alert times, a title."""

    start: pd.Timestamp
    end: pd.Timestamp
    title: str = "Incident"
    extra_metrics: tuple[MetricSpec, ...] = ()
    instance_metrics: tuple[str, ...] = ("CPUUtilization", "CPUCreditBalance", "CPUCreditUsage")
    alerts: dict[str, pd.Timestamp] = field(default_factory=dict)

    @property
    def duration(self) -> pd.Timedelta:
        """Length of the window."""
        return self.end - self.start

    def _repr_markdown_(self) -> str:
        """How a notebook shows it: the window to the second in UTC, the alert times and what is read."""
        took = plain(self.duration.to_pytimedelta())
        lines = [f"**{self.title}**: {plain(self.start)} to {plain(self.end)} ({took})"]
        if self.alerts:
            lines.append("alerts: " + "; ".join(f"{k.replace('_', ' ')} {plain(v)}" for k, v in self.alerts.items()))
        lines.append("instance metrics: " + (", ".join(self.instance_metrics) or "none"))
        if self.extra_metrics:
            lines.append("extra metrics: " + ", ".join(m.label for m in self.extra_metrics))
        return "\n\n".join(lines)
    @property
    def history_start(self) -> pd.Timestamp:
        """Where to start reading events: an hour before the window (the API server's default event TTL).

        The detectors and the timeline keep only the window, but events from before it tie things together
        (the ``Scheduled`` event that put a pod on the node lost later in the window).
        """
        return self.start - pd.Timedelta(hours=1)


def _parse_time(name: str, value: str | datetime | None) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return pd.Timestamp(parse_time(value, name))


def incident(
    start: str | datetime | None = "",
    end: str | datetime | None = "",
    last_hours: float = 0,
    *,
    title: str = "Incident",
    extra_metrics: Sequence[str] = (),
    instance_metrics: Sequence[str] = ("CPUUtilization", "CPUCreditBalance", "CPUCreditUsage"),
    alerts: dict[str, str] | None = None,
    now: datetime | None = None,
    max_days: float = 31,
) -> Incident:
    """Validate the runbook's parameters into an :class:`Incident`. Pure: no API is called.

    Args:
        start: window start (ISO-8601, naive = UTC), or empty with ``last_hours``.
        end: window end (empty = now).
        last_hours: window = the last N hours before ``end`` (used when ``start`` is empty).
        title: incident title.
        extra_metrics: ``Namespace/Name[:Dim=Value,...][:Stat]`` specs (e.g. a queue depth).
        instance_metrics: per-instance AWS/EC2 metric names.
        alerts: times of ``first_alert``, ``acknowledged``, ``mitigated``, ``resolved`` (empty = unknown).
        now: the current time (default: the clock), for "window in the future".
        max_days: longest window accepted.

    Raises:
        BadInput: end before start, window in the future, no window, too long, unknown metric, bad alert time.
    """
    now_ts = _parse_time("now", now or pd.Timestamp.now(tz="UTC"))
    assert now_ts is not None
    end_ts = _parse_time("end", end) or now_ts
    start_ts = _parse_time("start", start)
    if start_ts is None:
        if last_hours <= 0:
            raise BadInput("give a window: start (and end), or last_hours > 0")
        start_ts = end_ts - pd.Timedelta(hours=last_hours)
    if end_ts <= start_ts:
        raise BadInput(
            f"the window ends ({end_ts:%Y-%m-%dT%H:%M:%SZ}) before it starts "
            f"({start_ts:%Y-%m-%dT%H:%M:%SZ}): swap start and end"
        )
    if start_ts > now_ts:
        raise BadInput(
            f"the window starts in the future ({start_ts:%Y-%m-%dT%H:%M:%SZ} > now "
            f"{now_ts:%Y-%m-%dT%H:%M:%SZ}): times are UTC; check the date and the time zone"
        )
    if end_ts - start_ts > pd.Timedelta(days=max_days):
        raise BadInput(f"the window is longer than {max_days:g} days: narrow it to the incident")
    specs = tuple(parse_metric_spec(m) for m in extra_metrics if m.strip())
    names = tuple(check_instance_metrics(list(instance_metrics)))
    parsed: dict[str, pd.Timestamp] = {}
    for k, v in (alerts or {}).items():
        if k not in ALERT_KEYS:
            raise BadInput(f"alert time {k!r} is not one of {', '.join(ALERT_KEYS)}")
        t = _parse_time(k, v)
        if t is not None:
            parsed[k] = t
    order = [k for k in ALERT_KEYS if k in parsed]
    for a, b in pairwise(order):
        if parsed[b] < parsed[a]:
            raise BadInput(f"alert times out of order: {b} ({parsed[b]}) is before {a} ({parsed[a]})")
    return Incident(min(start_ts, now_ts), min(end_ts, now_ts), title, specs, names, parsed)


def _severity_of_events(events: pd.DataFrame) -> pd.Series:
    sev = events["reason"].map(_REASON_SEVERITY)
    warn = (events["type"] == "Warning").map({True: "medium", False: "info"})
    sev = sev.fillna(warn)
    cancelled = events["message"].str.startswith("Cancelling", na=False)
    return sev.mask(cancelled, "low")


def events_to_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Timeline rows (:data:`TIMELINE_COLUMNS`) from a normalised events frame."""
    if events.empty:
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES.get(c, "object")) for c in TIMELINE_COLUMNS})
    cancelled = events["message"].str.startswith("Cancelling", na=False)
    what = events["reason"].where(~cancelled, events["reason"] + " cancelled")
    return pd.DataFrame(
        {
            "time": events["first_time"].fillna(events["time"]),
            "last_time": events["time"],
            "source": "event",
            "object": events["object"],
            "what": what,
            "detail": events["message"],
            "count": events["count"].astype("int64"),
            "severity": _severity_of_events(events),
            "evidence": events["event"],
        }
    )


_DTYPES = {"time": "datetime64[ns, UTC]", "last_time": "datetime64[ns, UTC]", "count": "int64"}


def _as_rows(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if "last_time" not in out:
        out["last_time"] = out["time"]
    if "count" not in out:
        out["count"] = 1
    return out[TIMELINE_COLUMNS]


def alert_rows(alerts: dict[str, pd.Timestamp]) -> pd.DataFrame:
    """Timeline rows for the alert times a person gave (first page, ack, mitigated, resolved)."""
    recs = [
        (
            t,
            t,
            "alert",
            "Incident",
            k.replace("_", " "),
            "given as a runbook parameter",
            1,
            "high" if k == "first_alert" else "info",
            "runbook parameters",
        )
        for k, t in alerts.items()
    ]
    df = pd.DataFrame(recs, columns=TIMELINE_COLUMNS)
    for c in ("time", "last_time"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df


_RS_SUFFIX = r"-[a-f0-9]{8,10}$"


def group_key(objects: pd.Series) -> pd.Series:
    """The object a row collapses under: pods by their ReplicaSet/Job/DaemonSet prefix, others as is."""
    is_pod = objects.str.startswith("pod/").fillna(False).astype(bool)
    out = objects.copy()
    out[is_pod] = objects[is_pod].str.replace(POD_SUFFIX, "-*", regex=True)
    return out


def collapse(rows: pd.DataFrame, gap: pd.Timedelta | float = 30.0) -> pd.DataFrame:
    """Collapse runs of rows with the same source, object group and ``what`` within ``gap``.

    Args:
        rows: a timeline frame (:data:`TIMELINE_COLUMNS`).
        gap: rows further apart than this start a new run.

    Returns:
        The collapsed timeline, sorted by time: ``count`` summed, ``time`` the first, ``last_time`` the
        last occurrence, ``object`` the single object or ``<group> (n)``, ``detail`` the first detail
        (``(+k more)`` appended when they differ), ``severity`` the worst.
    """
    if rows.empty:
        return rows.reset_index(drop=True)
    if not isinstance(gap, pd.Timedelta):
        gap = pd.Timedelta(seconds=float(gap))
    df = rows.reset_index(drop=True)
    groups = group_key(df["object"])
    codes = df.groupby([df["source"], groups, df["what"]], sort=False, dropna=False).ngroup().to_numpy()
    t = df["time"].to_numpy(dtype="datetime64[ns]").view("int64")
    last = df["last_time"].fillna(df["time"]).to_numpy(dtype="datetime64[ns]").view("int64")
    order = np.lexsort((t, codes))
    codes, t, last = codes[order], t[order], last[order]
    prev_last = pd.Series(last).groupby(codes).cummax().to_numpy()  # latest end so far, per key
    new_run = np.r_[True, (codes[1:] != codes[:-1]) | (t[1:] - prev_last[:-1] > gap.value)]
    starts = np.flatnonzero(new_run)
    run = np.cumsum(new_run) - 1
    sev = df["severity"].map(SEVERITY_RANK).fillna(0).to_numpy(dtype="int8")[order]
    cnt = df["count"].to_numpy(dtype="int64")[order]

    def n_distinct(col: pd.Series) -> np.ndarray:
        c = pd.factorize(col)[0][order].astype("int64")
        pairs = np.unique(run * (int(c.max()) + 2) + c)
        return np.bincount(pairs // (int(c.max()) + 2), minlength=len(starts))

    head = df.iloc[order[starts]].reset_index(drop=True)
    n_obj, n_detail = n_distinct(df["object"]), n_distinct(df["detail"].astype(str))
    out = pd.DataFrame(
        {
            "time": head["time"],
            "last_time": pd.to_datetime(np.maximum.reduceat(last, starts), utc=True),
            "source": head["source"],
            "what": head["what"],
            "count": np.add.reduceat(cnt, starts),
            "evidence": head["evidence"],
            "severity": pd.Series(np.maximum.reduceat(sev, starts)).map(dict(enumerate(SEVERITIES))),
        }
    )
    multi = n_obj > 1
    out["object"] = head["object"]
    counts = pd.Series(n_obj[multi]).astype(str).to_numpy()
    out.loc[multi, "object"] = group_key(head["object"][multi]) + " (" + counts + ")"
    out["detail"] = head["detail"].where(
        n_detail <= 1, head["detail"].astype(str) + " (+" + pd.Series(n_detail - 1).astype(str) + " more)"
    )
    return out[TIMELINE_COLUMNS].sort_values(["time", "source"], kind="stable").reset_index(drop=True)


def build_timeline(
    events: pd.DataFrame | None = None,
    evidence: Sequence[pd.DataFrame] | pd.DataFrame = (),
    incident: Incident | None = None,
    gap: pd.Timedelta | float = 30.0,
    min_severity: str = "info",
    metrics: pd.DataFrame | None = None,
    cache: MetricsCache | None = None,
) -> pd.DataFrame:
    """One merged, collapsed timeline from events and evidence frames.

    Args:
        events: normalised events (:func:`opsbook.k8s.events.normalise_events`).
        evidence: frames with ``time, source, object, what, detail, severity, evidence`` (k8s state,
            AWS, metric milestones from :func:`opsbook.analysis.outage.metric_milestones`).
        incident: when given, rows are limited to its window (rows without a time are dropped) and its
            alert times are added.
        gap: collapse runs closer than this (see :func:`collapse`); a number is seconds.
        min_severity: drop rows below this severity.
        metrics: a metrics frame whose turning points (credits exhausted, a backlog growing) become rows.
        cache: what was computed from ``metrics``, shared with :func:`opsbook.analysis.outage.run_detectors`.

    Returns:
        DataFrame of :data:`TIMELINE_COLUMNS`, sorted by time.
    """
    parts = [events_to_rows(events)] if events is not None and len(events) else []
    if isinstance(evidence, pd.DataFrame):
        evidence = [evidence]
    if metrics is not None and len(metrics):
        from opsbook.analysis.outage.metrics import metric_milestones

        evidence = [*evidence, metric_milestones(metrics, cache=cache)]
    parts += [_as_rows(e) for e in evidence if len(e)]
    if not isinstance(gap, pd.Timedelta):
        gap = pd.Timedelta(seconds=float(gap))
    if incident is not None and incident.alerts:
        parts.append(alert_rows(incident.alerts))
    if not parts:
        return events_to_rows(pd.DataFrame(columns=["time"]))
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[rows["time"].notna()]
    if incident is not None:
        last = rows["last_time"].fillna(rows["time"])
        rows = rows[(last >= incident.start) & (rows["time"] <= incident.end)]
        # a repeat that began before the window shows at its last occurrence, the one known to be inside
        rows = rows.assign(time=rows["time"].where(rows["time"] >= incident.start, rows["last_time"]))
    if min_severity != "info":
        rows = rows[rows["severity"].map(SEVERITY_RANK).fillna(0) >= SEVERITY_RANK[min_severity]]
    rows = rows.assign(count=rows["count"].fillna(1).astype("int64"))
    return collapse(rows, gap)
