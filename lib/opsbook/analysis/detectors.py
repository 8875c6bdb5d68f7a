"""Detectors for the failure modes the team has lived through (pure: DataFrames in, findings out).

Each detector looks at the normalised events, the evidence rows (Kubernetes
state, AWS) and the metrics, and returns findings: a severity, the time the
cause began, the object, a message saying what happened and what to do, the
evidence to look at, and a score. :func:`run_detectors` ranks them with one rule.

**The ranking rule.** A finding is a *likely cause* only if it began inside the
window, or at most ``Config.cause_lead`` (15 min) before it (for ``cpu.credits``
whose backlog grows inside the window: ``credit_backlog_horizon``, 6 h, because
credits run out hours before the queue backs up), and before its effects (each
detector checks its own order: heartbeat → NotReady → evictions; rollout →
crash; exhaustion → backlog). Anything older that is still wrong is a *standing
problem* (``kind="standing"``, severity capped at ``medium``: it was broken
before the incident began, so it cannot have started it); severity-``low``
findings (a node that flapped and recovered) are *noise*. Causes rank first:
``critical``/``high`` before ``medium``, then by start time, earliest first (an
earlier cause can explain a later one, never the reverse), then by score;
then standing problems, then noise. ``kind`` says which a finding is.

Detectors:

- ``node.lost``: a node stopped heartbeating → NotReady → NoExecute taint → pods
  evicted → replacements, with the actual delays against the configured
  ``node-monitor-grace-period`` and toleration seconds. Pods are tied to the node
  by what outlives the window: the taint manager's ``TaintManagerEviction``
  "Marking for deletion Pod ns/name" events, the pods' ``spec.nodeName`` in the
  current state (an evicted pod stays ``Terminating`` on an unreachable node),
  ``Scheduled`` events from any time (archive). It reports the evicted pods and
  the workloads that lost capacity. Nodes that only flapped score low.
- ``zone.outage``: every node of one availability zone lost at once: one cause
  instead of N node losses (see :func:`merge_zone_outage`).
- ``control-plane.restart``: the API server's process started in the window; the
  controller-manager/scheduler leader lease changed hands; control-plane pods restarted.
- ``cpu.credits``: CPUCreditBalance ≈ 0 with CPUUtilization flat at a baseline,
  scored higher when it precedes the growth of an extra metric (backlog, latency).
- ``consumer.stalled``: a queue's depth grows while its consumers' throughput is
  flat at zero, with no credit exhaustion to explain it.
- ``rollout.crashloop`` / ``rollout.unready``: pods crash-looping or never ready
  shortly after their ReplicaSet was rolled out, the rollout time taken from the
  Deployment's history (``ScalingReplicaSet`` events, the ReplicaSet reused by a
  rollback), not from the ReplicaSet's creation.
- ``certificate.expiry``: a certificate that expired inside the window (a cause), or
  long before it (standing), or x509 errors.
- ``asg.terminated``: an instance of the cluster was terminated (ASG activity or EC2
  state); merged into the ``node.lost`` of its node when both are seen (EC2 death).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opsbook.report import ROW_COLUMNS

FINDING_COLUMNS = [
    "rank", "kind", "check", "severity", "time", "object", "message", "evidence", "score", "data",
]
"""Columns of a findings frame: ``rank`` (1 = most likely cause), ``kind`` (``cause``, ``standing``,
``noise``: see the ranking rule), ``check`` (detector id), ``severity``,
``time`` (when the cause began, UTC), ``object``, ``message``, ``evidence`` (``; ``-separated), ``score``,
``data`` (dict of measured values, e.g. delays)."""


@dataclass(frozen=True)
class Config:
    """What the cluster is configured to do, to compare with what happened.

    Production kops defaults: grace 40 s (50 s from Kubernetes 1.32), tolerations 300 s. The test
    sandbox uses 10 s and 10 s.
    """

    node_monitor_grace_s: float = 40
    toleration_s: float = 300
    rollout_lookback: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(minutes=30))
    credit_backlog_horizon: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=6))
    cert_warning: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=30))
    cause_lead: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(minutes=15))
    """How long before the window a cause may begin and still be ranked (the ranking rule)."""


def _empty_findings() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns, UTC]" if c == "time" else "object") for c in FINDING_COLUMNS}
    )


def _finding(
    check: str,
    severity: str,
    time: Any,
    obj: str,
    message: str,
    evidence: list[str],
    score: float,
    **data: Any,
) -> dict[str, Any]:
    return {
        "check": check,
        "severity": severity,
        "time": time,
        "object": obj,
        "message": message,
        "evidence": "; ".join(dict.fromkeys(e for e in evidence if e)),
        "score": float(score),
        "data": data,
    }


def _fmt(t: Any) -> str:
    return "?" if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%H:%M:%SZ")


def _secs(a: Any, b: Any) -> float | None:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return None
    return float((pd.Timestamp(b) - pd.Timestamp(a)).total_seconds())


def _col(df: pd.DataFrame | None, name: str) -> pd.Series:
    return df[name] if df is not None and name in df else pd.Series(dtype="object")


# -- node lost ---------------------------------------------------------------------------------------
_ASSIGNED = re.compile(r"Successfully assigned (?P<ns>[^/\s]+)/(?P<pod>\S+) to (?P<node>\S+)")
_MARKING = re.compile(r"Marking for deletion Pod (?P<ns>[^/\s]+)/(?P<pod>\S+)")
_CANCEL = re.compile(r"Cancelling deletion of Pod (?P<ns>[^/\s]+)/(?P<pod>\S+)")


def pod_nodes(events: pd.DataFrame, evidence: pd.DataFrame, only: set[str] | None = None) -> dict[str, str]:
    """Map ``ns/pod`` → node name from whatever outlives the window (``only``: these pod names).

    Sources, in order of preference: the pod's ``spec.nodeName`` in the current state (``created``/
    ``deleting`` rows: a pod evicted from an unreachable node stays ``Terminating`` there until the node
    returns or its Node object is deleted), then the scheduler's ``Scheduled`` events (live or archived,
    however long before the window they were written).
    """
    out: dict[str, str] = {}
    if len(evidence):
        rows = evidence[
            (evidence["source"] == "pod")
            & evidence["what"].isin(["created", "deleting"])
            & evidence["detail"].astype(str).str.startswith("on node ")
        ]
        for r in rows.itertuples():
            pod = str(r.object)[4:]
            if only is None or pod.split("/", 1)[-1] in only:
                out.setdefault(pod, str(r.detail)[8:])
    sched = events[events["reason"] == "Scheduled"] if len(events) else events
    if only is not None and len(sched):
        sched = sched[sched["name"].isin(only)]
    for m in sched["message"].str.extract(_ASSIGNED).dropna().itertuples():
        out.setdefault(f"{m.ns}/{m.pod}", str(m.node))
    return out


def workload_of(pod: str, rollouts: pd.DataFrame | None = None) -> str:
    """The workload that owns ``ns/pod``.

    ``Deployment/ns/name`` when its ReplicaSet is known from the rollout rows, else
    ``ReplicaSet/ns/<pod minus its hash>``.
    """
    ns, name = pod.split("/", 1)
    rs = _HASH5.sub("", name)
    if rollouts is not None and len(rollouts):
        hit = rollouts[rollouts["what"].str.startswith(f"ReplicaSet {rs} ", na=False)]
        hit = hit[hit["object"].str.startswith(f"Deployment/{ns}/", na=False)]
        if len(hit):
            return str(hit["object"].iloc[0])
    return f"ReplicaSet/{ns}/{rs}"


_HASH5 = re.compile(r"-[a-z0-9]{5}$")


def _marks(tme: pd.DataFrame, placed: dict[str, str]) -> pd.DataFrame:
    marks = tme[tme["message"].str.startswith("Marking", na=False)]
    ev_pods = marks["message"].str.extract(_MARKING)
    marks = marks.assign(pod=(ev_pods["ns"] + "/" + ev_pods["pod"]).values)
    return marks.assign(node=marks["pod"].map(placed).astype("object"))


def detect_node_lost(
    events: pd.DataFrame,
    evidence: pd.DataFrame,
    config: Config = Config(),
    history_events: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Node lost → taint → evictions → replacements, with actual vs configured delays.

    Args:
        events: events inside the window.
        evidence: evidence rows inside the window.
        config: configured delays.
        history_events: every event read, also before the window (``Scheduled`` events of pods placed
            long before the incident); default ``events``.
        history: every evidence row, also before the window (the current pods' ``spec.nodeName``);
            default ``evidence``.
    """
    if events.empty and evidence.empty:
        return []
    history_events = events if history_events is None else history_events
    history = evidence if history is None else history
    nodes_nr = events[(events["reason"] == "NodeNotReady") & (events["kind"] == "Node")]
    tme = events[events["reason"] == "TaintManagerEviction"]
    placed = pod_nodes(history_events, history, set(tme["name"]))
    marks = _marks(tme, placed)
    cancels = tme[tme["message"].str.startswith("Cancelling", na=False)]
    cp = cancels["message"].str.extract(_CANCEL)
    cancel_pods = cp["ns"] + "/" + cp["pod"]
    cancel_nodes = cancel_pods.map(placed)
    node_rows = evidence[evidence["source"] == "node"] if len(evidence) else evidence
    rollouts = history[history["source"] == "rollout"] if len(history) else history
    bad_nodes: set[str] = set(nodes_nr["name"])
    if len(node_rows):
        bad = node_rows[
            node_rows["what"].isin(["Ready=Unknown", "Ready=False"])
            | node_rows["what"].str.contains(r"NoExecute", regex=False)
        ]
        bad_nodes |= {o.split("/", 1)[1] for o in bad["object"]}
    # a marked pod whose node is unknown (pod deleted, no archive): if exactly one node went bad in the
    # window and did not come back, the taint manager can only have marked it for that node
    unplaced = marks["node"].isna()
    if unplaced.any():
        back = set()
        if len(node_rows):
            ready = node_rows[node_rows["what"] == "Ready=True"]
            for n in bad_nodes:
                t_bad = nodes_nr[nodes_nr["name"] == n]["time"].min()
                t_ok = ready[ready["object"] == f"Node/{n}"]["time"].max()
                if not pd.isna(t_ok) and (pd.isna(t_bad) or t_ok >= t_bad):
                    back.add(n)
        gone = bad_nodes - back
        if len(gone) == 1:
            marks.loc[unplaced, "node"] = next(iter(gone))
    # a pod whose deletion was cancelled after it was marked was not evicted, unless it is being deleted
    # anyway (the taint manager cancels the work of a pod that is deleted, e.g. by a rollout's scale-down)
    deleting: set[str] = set()
    if len(history):
        d = history[(history["source"] == "pod") & (history["what"] == "deleting")]
        deleting = {str(o)[4:] for o in d["object"]}
    cancel_at = cancels.assign(pod=cancel_pods.values).groupby("pod")["time"].max()
    last_mark = marks.groupby("pod")["time"].max()
    undone = {
        pod for pod, t in cancel_at.items() if pod in last_mark and t >= last_mark[pod] and pod not in deleting
    }
    marks = marks[~marks["pod"].isin(undone)]
    candidates = bad_nodes | set(marks["node"].dropna())
    created = events[events["reason"] == "SuccessfulCreate"]
    sched = events[events["reason"] == "Scheduled"]
    out: list[dict[str, Any]] = []
    for node in sorted(candidates):
        obj = f"Node/{node}"
        nr = nodes_nr[nodes_nr["name"] == node]
        t_nr = nr["first_time"].min() if len(nr) else None
        mine = node_rows[node_rows["object"] == obj] if len(node_rows) else node_rows
        unready_now = bool(len(mine) and mine["what"].isin(["Ready=Unknown", "Ready=False"]).any())
        if t_nr is None or pd.isna(t_nr):
            bad_rows = mine[mine["what"].isin(["Ready=Unknown", "Ready=False"])] if len(mine) else mine
            t_nr = bad_rows["time"].min() if len(bad_rows) else None
        taints = (
            mine[
                mine["what"].str.contains(
                    r"taint node\.kubernetes\.io/(?:unreachable|not-ready):NoExecute", regex=True
                )
            ]
            if len(mine)
            else mine
        )
        t_taint = taints["time"].min() if len(taints) else None
        hb = mine[mine["what"] == "heartbeat stopped"] if len(mine) else mine
        t_hb = hb["time"].min() if len(hb) else None
        evicted = marks[marks["node"] == node]
        pods_evicted = sorted(set(evicted["pod"]))
        n_ev = len(pods_evicted)
        t_ev = evicted["time"].min() if n_ev else None
        n_cancel = int((cancel_nodes == node).sum())
        workloads: dict[str, int] = {}
        for pod in pods_evicted:
            w = workload_of(pod, rollouts)
            workloads[w] = workloads.get(w, 0) + 1
        # replacements: pods created by the evicted pods' ReplicaSets after the first eviction
        rs_names = {_HASH5.sub("", p) for p in pods_evicted}
        t_rep, rep_nodes = None, set()
        if n_ev and len(created):
            mine_rs = created[
                (created["kind"] == "ReplicaSet")
                & (created["namespace"] + "/" + created["name"]).isin(rs_names)
                & (created["time"] >= t_ev)
            ]
            new_pods = set(mine_rs["namespace"] + "/" + mine_rs["message"].str.replace("Created pod: ", ""))
            s = sched[(sched["namespace"] + "/" + sched["name"]).isin(new_pods)]
            if len(s):
                t_rep = s["time"].max()
                rep_nodes = set(s["message"].str.extract(_ASSIGNED)["node"].dropna())
            elif len(mine_rs):
                t_rep = mine_rs["time"].max()
        d_grace = _secs(t_hb, t_nr)
        d_taint = _secs(t_nr, t_taint)
        d_evict = _secs(t_taint if t_taint is not None and not pd.isna(t_taint) else t_nr, t_ev)
        d_rep = _secs(t_ev, t_rep)
        flaps = int(nr["count"].sum()) if len(nr) else 0
        score = (
            (60 if n_ev else 0)
            + min(n_ev, 20)
            + (15 if unready_now else 0)
            + (10 if t_taint is not None and not pd.isna(t_taint) else 0)
            + (5 if t_nr is not None else 0)
        )
        evidence_list = [
            f"kubectl describe node {node}",
            f"kubectl get events -A --field-selector involvedObject.name={node}",
        ]
        evidence_list += list(evicted["event"].head(3))
        if n_ev:
            parts = [f"Node {node} was lost"]
            if t_hb is not None and not pd.isna(t_hb):
                parts.append(f"its last heartbeat was at {_fmt(t_hb)}")
            parts.append(
                f"NotReady at {_fmt(t_nr)}"
                + (
                    f" ({d_grace:.0f} s after the last heartbeat; "
                    f"configured grace {config.node_monitor_grace_s:g} s)"
                    if d_grace is not None
                    else ""
                )
            )
            if t_taint is not None and not pd.isna(t_taint):
                parts.append(f"tainted NoExecute at {_fmt(t_taint)}")
            parts.append(
                f"{n_ev} pod(s) evicted from {_fmt(t_ev)}"
                + (
                    f" ({d_evict:.0f} s after the {'taint' if d_taint is not None else 'NotReady'}; "
                    f"configured toleration {config.toleration_s:g} s)"
                    if d_evict is not None
                    else ""
                )
            )
            parts.append(
                "evicted: " + ", ".join(pods_evicted[:6]) + (f" and {n_ev - 6} more" if n_ev > 6 else "")
            )
            parts.append(
                "workloads that lost capacity: "
                + ", ".join(f"{w} ({k} pod{'s' if k > 1 else ''})" for w, k in sorted(workloads.items()))
            )
            if t_rep is not None:
                parts.append(
                    f"replacements scheduled by {_fmt(t_rep)}"
                    + (f" on {', '.join(sorted(rep_nodes))}" if rep_nodes else "")
                )
            msg = "; ".join(parts) + (
                ". Check why the node stopped (EC2 status, ASG activity, kubelet/"
                "containerd logs) and whether the workloads had enough replicas."
            )
            sev = "critical"
        else:
            msg = (
                f"Node {node} went NotReady at {_fmt(t_nr)} ({flaps}x) but no pod was evicted"
                + (
                    f" ({n_cancel} eviction(s) cancelled: it recovered within the toleration)"
                    if n_cancel
                    else ""
                )
                + (". It is still not Ready." if unready_now else ": a brief flap.")
            )
            sev = "high" if unready_now else "low"
        out.append(
            _finding(
                "node.lost",
                sev,
                t_hb if t_hb is not None and not pd.isna(t_hb) else t_nr,
                obj,
                msg,
                evidence_list,
                score,
                heartbeat=t_hb,
                not_ready=t_nr,
                tainted=t_taint,
                first_eviction=t_ev,
                replaced=t_rep,
                evictions=n_ev,
                evicted_pods=pods_evicted,
                workloads=workloads,
                cancelled=n_cancel,
                not_ready_events=flaps,
                delay_not_ready_s=d_grace,
                delay_taint_s=d_taint,
                delay_evict_s=d_evict,
                delay_replace_s=d_rep,
                configured_grace_s=config.node_monitor_grace_s,
                configured_toleration_s=config.toleration_s,
                still_not_ready=unready_now,
            )
        )
    return out


# -- control plane -----------------------------------------------------------------------------------
def detect_control_plane_restart(
    events: pd.DataFrame, evidence: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> list[dict[str, Any]]:
    """API server (re)started, leader leases changed hands, control-plane pods restarted, in the window."""
    if evidence.empty:
        return []
    cp = evidence[
        (evidence["source"] == "control-plane") & (evidence["time"] >= start) & (evidence["time"] <= end)
    ]
    api = cp[cp["what"] == "kube-apiserver started"]
    restarts = cp[cp["what"].str.endswith((" restarted", " terminated"))]
    leaders = cp[
        cp["what"].str.endswith("leader elected")
        & ~cp["detail"].str.contains(r"\b0 leader transitions", regex=True)
    ]
    if len(events):
        le = events[
            (events["reason"] == "LeaderElection") & (events["time"] >= start) & (events["time"] <= end)
        ]
    else:
        le = events
    if api.empty and restarts.empty:
        return []
    t0 = pd.concat([api["time"], restarts["time"]]).min()
    parts = []
    if len(api):
        parts.append(f"kube-apiserver started at {_fmt(api['time'].min())}")
    for r in restarts.itertuples():
        parts.append(f"{r.what} at {_fmt(r.time)} ({r.detail})")
    if len(leaders):
        parts.append(
            "new leader elected for "
            + ", ".join(f"{r.object.rsplit('/', 1)[-1]} at {_fmt(r.time)}" for r in leaders.itertuples())
        )
    elif len(le):
        parts.append(f"{len(le)} LeaderElection event(s)")
    msg = (
        "Control-plane restart: " + "; ".join(parts) + ". While the API server is down nothing can be "
        "scheduled or changed, and controllers that cannot renew their lease within 10 s exit and restart. "
        "Check the control-plane node (kubelet, etcd, disk, memory) and its logs."
    )
    ev = list(api["evidence"]) + list(restarts["evidence"]) + list(leaders["evidence"])
    return [
        _finding(
            "control-plane.restart",
            "high",
            t0,
            "ControlPlane/kube-apiserver",
            msg,
            ev,
            55 + 5 * len(leaders) + 5 * len(restarts),
            apiserver_started=api["time"].min(),
            leader_changes=len(leaders),
            pod_restarts=len(restarts),
        )
    ]


# -- metrics -----------------------------------------------------------------------------------------
def _growth_onset(t: np.ndarray, v: np.ndarray, sustain: int = 3) -> tuple[Any, float, float] | None:
    n = len(v)
    if n < 2 * sustain:
        return None
    head = max(sustain, n // 10)
    base = float(np.median(v[:head]))
    peak = float(v.max())
    if not peak - base > max(0.5 * abs(base), 1e-9):
        return None
    above = v > base + 0.2 * (peak - base)
    run = np.convolve(above.astype(np.int8), np.ones(sustain, dtype=np.int8), mode="valid") == sustain
    idx = np.flatnonzero(run)
    if not len(idx):
        return None
    i = int(idx[0])
    return t[i], base, peak


def metric_milestones(metrics: pd.DataFrame, zero_balance: float = 0.5) -> pd.DataFrame:
    """Timeline rows for metric turning points.

    - ``CPUCreditBalance exhausted`` (balance ≤ ``zero_balance``) per instance, with
      ``CPUUtilization flat at N %`` when the CPU is flat while the balance is zero;
    - ``<metric> growing`` for every non-AWS/EC2 series (the extra metrics) whose value rises
      sustainably above its starting level.

    Returns:
        Rows with ``time, source='metric', object='Metric/<name>/<id>', what, detail, severity, evidence``.
    """
    cols = ROW_COLUMNS
    recs: list[tuple[Any, ...]] = []
    if metrics.empty:
        return pd.DataFrame(recs, columns=cols).astype({"time": "datetime64[ns, UTC]"})
    for ex in credit_exhaustion(metrics, zero_balance).itertuples():
        recs.append(
            (
                ex.zero_at,
                "metric",
                f"Metric/CPUCreditBalance/{ex.id}",
                "CPUCreditBalance exhausted",
                f"balance fell from {ex.balance_max:.0f} to {ex.balance_min:.1f} credits",
                "high",
                f"CloudWatch AWS/EC2 CPUCreditBalance InstanceId={ex.id}",
            )
        )
        if ex.cpu_flat:
            recs.append(
                (
                    ex.zero_at,
                    "metric",
                    f"Metric/CPUUtilization/{ex.id}",
                    f"CPUUtilization flat at {ex.cpu_level:.0f}%",
                    f"p10-p90 {ex.cpu_p10:.1f}-{ex.cpu_p90:.1f}% while the balance was zero: throttled to "
                    "baseline",
                    "high",
                    f"CloudWatch AWS/EC2 CPUUtilization InstanceId={ex.id}",
                )
            )
    for g in growth(metrics).itertuples():
        recs.append(
            (
                g.onset,
                "metric",
                f"Metric/{g.metric}/{g.id}",
                f"{g.metric} growing",
                f"from {g.base:g} to {g.peak:g}",
                "high",
                f"CloudWatch {g.namespace} {g.metric} ({g.id})",
            )
        )
    df = pd.DataFrame(recs, columns=cols)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _series(df: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Order rows by series then time without reshuffling the frame.

    Returns:
        (the key columns of the first row of each series, times as int64 ns, values, start offset of
        each series in the ordered arrays).
    """
    if not len(df):
        e = np.array([], dtype="int64")
        return df[keys].iloc[:0], e, e.astype(float), e
    codes = df.groupby(keys, sort=False).ngroup().to_numpy()
    t = df["time"].to_numpy(dtype="datetime64[ns]").view("int64")
    order = np.lexsort((t, codes))
    codes, t, v = codes[order], t[order], df["value"].to_numpy(dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    heads = df[keys].iloc[order[starts]].reset_index(drop=True)
    return heads, t, v, starts


def _utc(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def growth(metrics: pd.DataFrame) -> pd.DataFrame:
    """Sustained growth onsets of the non-AWS/EC2 series.

    Returns:
        DataFrame with columns ``namespace, metric, id, onset, base, peak``.
    """
    return _cached("growth", metrics, len(metrics), lambda: _growth(metrics))


def _growth(metrics: pd.DataFrame) -> pd.DataFrame:
    cols = ["namespace", "metric", "id", "onset", "base", "peak"]
    heads, t, v, starts = _series(metrics[metrics["namespace"] != "AWS/EC2"], ["namespace", "metric", "id"])
    out = []
    ends = np.r_[starts[1:], len(v)]
    for k, (a, b) in enumerate(zip(starts, ends, strict=False)):
        r = _growth_onset(t[a:b], v[a:b])
        if r is not None:
            first = heads.iloc[k]
            out.append((first["namespace"], first["metric"], first["id"], _utc(r[0]), r[1], r[2]))
    return pd.DataFrame(out, columns=cols)


_LAST: dict[str, tuple[pd.DataFrame, Any, pd.DataFrame]] = {}


def _cached(name: str, metrics: pd.DataFrame, key: Any, fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Reuse the last result for the very same metrics frame (the timeline and the detectors both ask)."""
    hit = _LAST.get(name)
    if hit is not None and hit[0] is metrics and hit[1] == key:
        return hit[2]
    out = fn()
    _LAST[name] = (metrics, key, out)
    return out


def credit_exhaustion(metrics: pd.DataFrame, zero_balance: float = 0.5) -> pd.DataFrame:
    """Instances whose CPUCreditBalance reached ≈0, with the CPU level while it stayed there.

    Returns:
        DataFrame with columns ``id, zero_at, zero_until, balance_max, balance_min, cpu_level, cpu_p10,
        cpu_p90, cpu_flat`` (flat: p90 − p10 ≤ max(2, 15 % of the median) percentage points).
    """
    return _cached(
        "credits", metrics, (len(metrics), zero_balance), lambda: _credit_exhaustion(metrics, zero_balance)
    )


def _credit_exhaustion(metrics: pd.DataFrame, zero_balance: float) -> pd.DataFrame:
    cols = [
        "id",
        "zero_at",
        "zero_until",
        "balance_max",
        "balance_min",
        "cpu_level",
        "cpu_p10",
        "cpu_p90",
        "cpu_flat",
    ]
    ec2 = metrics[metrics["namespace"] == "AWS/EC2"]
    bal, bt, bv, bstarts = _series(ec2[ec2["metric"] == "CPUCreditBalance"], ["id"])
    if not len(bal):
        return pd.DataFrame([], columns=cols)
    cpu, ct, cv, cstarts = _series(ec2[ec2["metric"] == "CPUUtilization"], ["id"])
    cends = np.r_[cstarts[1:], len(cv)]
    cpu_at = {cpu["id"].iat[k]: (a, b) for k, (a, b) in enumerate(zip(cstarts, cends, strict=False))}
    out = []
    for k, (a, b) in enumerate(zip(bstarts, np.r_[bstarts[1:], len(bv)], strict=False)):
        v, t = bv[a:b], bt[a:b]
        zero = v <= zero_balance
        if not zero.any() or v.max() <= zero_balance:
            continue
        i = int(np.argmax(zero))
        j = i + int(np.argmin(zero[i:])) if not zero[i:].all() else len(v)
        zero_at, zero_until = t[i], t[j - 1]
        level = p10 = p90 = float("nan")
        flat = False
        iid = bal["id"].iat[k]
        if iid in cpu_at:
            ca, cb = cpu_at[iid]
            tt, vv = ct[ca:cb], cv[ca:cb]
            sel = vv[(tt >= zero_at) & (tt <= zero_until)]
            if len(sel) >= 3:
                level, p10, p90 = (float(x) for x in np.percentile(sel, [50, 10, 90]))
                flat = (p90 - p10) <= max(2.0, 0.15 * level) and level < 95
        out.append(
            (iid, _utc(zero_at), _utc(zero_until), float(v.max()), float(v.min()), level, p10, p90, flat)
        )
    return pd.DataFrame(out, columns=cols)


def detect_cpu_credits(
    metrics: pd.DataFrame,
    instances: pd.DataFrame | None = None,
    config: Config = Config(),
    milestones: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """CPU credit exhaustion (balance ≈ 0, CPU flat at baseline), and the backlog growth that follows."""
    if metrics.empty:
        return []
    ex = credit_exhaustion(metrics)
    if ex.empty:
        return []
    grown = growth(metrics)
    names: dict[str, str] = {}
    if instances is not None and len(instances):
        names = {r.instance_id: f"{r.instance_type} {r.private_dns}".strip() for r in instances.itertuples()}
    out = []
    for r in ex.itertuples():
        after = grown[
            (grown["onset"] >= r.zero_at) & (grown["onset"] <= r.zero_at + config.credit_backlog_horizon)
        ]
        # also a growth that began a little before the zero point but after the balance started falling
        follows = ""
        if len(after):
            g = after.sort_values("onset").iloc[0]
            lag = (g["onset"] - r.zero_at).total_seconds() / 60
            follows = (
                f" It precedes the growth of {g['metric']} ({g['id']}) at {_fmt(g['onset'])} by {lag:.0f} min"
                f" (from {g['base']:g} to {g['peak']:g})."
            )
        flat = (
            f" CPUUtilization stayed flat at {r.cpu_level:.0f}% (p10-p90 {r.cpu_p10:.1f}-{r.cpu_p90:.1f}) "
            "while the balance was zero: the instance was throttled to its baseline."
            if r.cpu_flat
            else " CPUUtilization was not flat (unlimited mode, or not CPU bound)."
        )
        msg = (
            f"CPU credits of {r.id} {names.get(r.id, '')} exhausted at {_fmt(r.zero_at)} (balance "
            f"{r.balance_max:.0f} → {r.balance_min:.1f}).{flat}{follows} Switch the instance group to "
            "`cpuCredits: unlimited`, move to a non-burstable type, or spread the load."
        ).replace("  ", " ")
        score = 50 + (15 if r.cpu_flat else 0) + (20 if follows else 0)
        out.append(
            _finding(
                "cpu.credits",
                "high" if r.cpu_flat else "medium",
                r.zero_at,
                f"Instance/{r.id}",
                msg,
                [
                    f"CloudWatch AWS/EC2 CPUCreditBalance InstanceId={r.id}",
                    f"CloudWatch AWS/EC2 CPUUtilization InstanceId={r.id}",
                ]
                + [f"CloudWatch {g.namespace} {g.metric} ({g.id})" for g in after.itertuples()],
                score,
                zero_at=r.zero_at,
                cpu_level=r.cpu_level,
                cpu_flat=bool(r.cpu_flat),
                backlog_onset=after["onset"].min() if len(after) else None,
            )
        )
    return out


# -- rollouts ----------------------------------------------------------------------------------------
def detect_crashloop_after_rollout(
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config(), history: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Pods crash-looping (BackOff, CrashLoopBackOff, restarts) within ``rollout_lookback`` of a rollout."""
    crash: list[tuple[str, Any, str]] = []  # (ns/pod, time, evidence)
    if len(events):
        bo = events[(events["reason"] == "BackOff") & (events["kind"] == "Pod")]
        bo = bo[bo["message"].str.contains("restarting failed container", na=False, regex=False)]
        crash += [(f"{r.namespace}/{r.name}", r.first_time, r.event) for r in bo.itertuples()]
    if len(evidence):
        pw = evidence[
            (evidence["source"] == "pod")
            & evidence["what"].isin(
                ["waiting CrashLoopBackOff", "restarts", "terminated Error", "terminated OOMKilled"]
            )
        ]
        crash += [(str(r.object)[4:], r.time, r.evidence) for r in pw.itertuples()]
    if not crash:
        return []
    return _after_rollout(
        crash, events, evidence, config, "rollout.crashloop", "crash-looping",
        "then read the logs of the new version", 65, history,
    )


def detect_unready_after_rollout(
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config(), history: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """New pods that never pass their readiness probe within ``rollout_lookback`` of a rollout.

    The team's failed MongoDB update: the new version starts but refuses to serve (e.g. an
    incompatible data format), so the probe fails and, with a Recreate strategy, nothing serves.
    """
    if not len(events):
        return []
    bad = events[(events["reason"] == "Unhealthy") & (events["kind"] == "Pod")]
    bad = bad[bad["message"].str.contains("Readiness probe failed", na=False, regex=False)]
    unready = [(f"{r.namespace}/{r.name}", r.first_time, r.event) for r in bad.itertuples()]
    return _after_rollout(
        unready, events, evidence, config, "rollout.unready", "failing readiness",
        "then check the new version's compatibility with its data (e.g. MongoDB featureCompatibilityVersion)",
        60,
        history,
    )


_SCALED_UP = re.compile(r"Scaled up replica set (?P<rs>\S+) (?:from \d+ )?to (?P<to>\d+)")


def rollout_times(events: pd.DataFrame, evidence: pd.DataFrame) -> pd.DataFrame:
    """When each ReplicaSet was rolled out, from the Deployment's own history.

    A rollout (or a rollback, or a re-roll to an earlier template, which reuse an old ReplicaSet) shows as
    the deployment controller's ``ScalingReplicaSet`` event "Scaled up replica set X ..." on the Deployment,
    as the ReplicaSet's creation, and as the controller's later change of the ReplicaSet's revision and
    replicas (:func:`opsbook.k8s.evidence.rollout_evidence`, ``scaled up`` rows).

    Returns:
        DataFrame with columns ``rs`` (``ns/name``), ``time``, ``deployment`` (``Deployment/ns/name``),
        ``detail``, ``how`` (``ScalingReplicaSet``, ``created``, ``scaled up``).
    """
    recs: list[tuple[Any, ...]] = []
    details: dict[str, str] = {}
    owners: dict[str, str] = {}
    ro = evidence[evidence["source"] == "rollout"] if len(evidence) else evidence
    for r in ro.itertuples():
        what = str(r.what).removeprefix("ReplicaSet ")
        rs, _, how = what.partition(" ")
        ns = str(r.object).split("/")[1]
        details[f"{ns}/{rs}"] = str(r.detail)
        owners[f"{ns}/{rs}"] = str(r.object)
        recs.append((f"{ns}/{rs}", r.time, str(r.object), str(r.detail), how))
    if len(events):
        sc = events[(events["reason"] == "ScalingReplicaSet") & (events["kind"] == "Deployment")]
        for r in sc.itertuples():
            m = _SCALED_UP.search(str(r.message))
            if not m:
                continue
            key = f"{r.namespace}/{m['rs']}"
            owners.setdefault(key, f"Deployment/{r.namespace}/{r.name}")
            recs.append((key, r.first_time, f"Deployment/{r.namespace}/{r.name}",
                         details.get(key, str(r.message)), "ScalingReplicaSet"))
    df = pd.DataFrame(recs, columns=["rs", "time", "deployment", "detail", "how"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def _after_rollout(
    hits: list[tuple[str, Any, str]], events: pd.DataFrame, evidence: pd.DataFrame, config: Config,
    check: str, what: str, advice: str, base_score: int, history: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Findings for pods (``ns/pod``, time, evidence) whose ReplicaSet was rolled out shortly before.

    The rollout time is the earliest roll-out moment of that ReplicaSet (:func:`rollout_times`) within
    ``rollout_lookback`` before the first hit: a rollback to an old ReplicaSet counts from the moment it
    was scaled up again, not from its creation. ``history`` (evidence from before the window too) tells
    whether the ReplicaSet existed long before (a rollback).
    """
    if not hits:
        return []
    cdf = pd.DataFrame(hits, columns=["pod", "time", "evidence"])
    cdf["rs"] = cdf["pod"].str.replace(r"-[a-z0-9]{5}$", "", regex=True)
    times = rollout_times(events, evidence)
    created_at = rollout_times(events.iloc[:0], evidence if history is None else history)
    created_at = created_at[created_at["how"] == "created"]
    out = []
    for rs, g in cdf[cdf["rs"].isin(set(times["rs"]))].groupby("rs"):
        t_hit = g["time"].min()
        if pd.isna(t_hit):
            continue
        mine = times[
            (times["rs"] == rs) & (times["time"] <= t_hit) & (times["time"] >= t_hit - config.rollout_lookback)
        ]
        if mine.empty:
            continue
        first = mine.iloc[0]
        t_rollout, deploy, detail = first["time"], str(first["deployment"]), str(first["detail"])
        born = created_at[created_at["rs"] == rs]["time"]
        reused = bool((born < t_rollout - pd.Timedelta(seconds=5)).any())
        lag = (t_hit - t_rollout).total_seconds()
        parts = deploy.split("/")
        ns, name = parts[1], parts[-1]
        msg = (
            f"{g['pod'].nunique()} pod(s) of ReplicaSet {rs} {what} from {_fmt(t_hit)}, {lag:.0f} s "
            f"after the {'rollback/re-roll to an earlier ReplicaSet' if reused else 'rollout'} at "
            f"{_fmt(t_rollout)} ({detail}). Roll back: "
            f"`kubectl -n {ns} rollout undo deployment/{name}`, {advice}."
        )
        out.append(
            _finding(
                check,
                "high",
                t_rollout,
                deploy,
                msg,
                [f"kubectl -n {ns} rollout history deployment/{name}", *g["evidence"].head(3)],
                base_score + min(10, g["pod"].nunique()),
                replicaset=rs,
                rollout_at=t_rollout,
                rollout_seen_as=str(first["how"]),
                reused_replicaset=reused,
                first_crash=t_hit,
                pods=int(g["pod"].nunique()),
            )
        )
    return out


# -- certificates -----------------------------------------------------------------------------------
_X509 = (
    r"x509: certificate has expired|certificate has expired|certificate is not yet valid|expired certificate"
)


def detect_certificate_expiry(
    events: pd.DataFrame,
    evidence: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    config: Config = Config(),
) -> list[dict[str, Any]]:
    """Certificates that expired, split by when, and x509 expiry errors in the window.

    - expired inside the window or within ``cause_lead`` before it: a candidate cause (critical), scored
      by how close its expiry is to the window;
    - expired longer ago and still there: a *standing problem* (medium, ``standing=True``): it was already
      broken before this incident began, so it is listed, never ranked above an in-window cause;
    - expiring within ``cert_warning`` after the window's end: a warning (medium).
    """
    out = []
    certs = evidence[evidence["source"] == "certificate"] if len(evidence) else evidence
    for r in certs.itertuples():
        ns = str(r.object).split("/")[1]
        renew = (
            f"Renew it with its issuer and replace the secret (`kubectl -n {ns} create secret tls ... "
            "--dry-run=client -o yaml | kubectl apply -f -`), then restart the workloads that mount it."
            if str(r.object).startswith("Secret/")
            else "Renew it (kops: `kops rolling-update cluster --force` after `kops update cluster`, "
            "or rotate the CA per the kops docs)."
        )
        if start - config.cause_lead <= r.time <= end:
            before = max(0.0, (start - r.time).total_seconds() / 60)
            out.append(
                _finding(
                    "certificate.expiry",
                    "critical",
                    r.time,
                    r.object,
                    f"{r.object} expired at {r.time:%Y-%m-%d %H:%M:%S}Z ({r.detail}), "
                    + ("inside the window. " if before == 0 else f"{before:.0f} min before the window. ")
                    + renew,
                    [r.evidence],
                    85 - min(20.0, before),
                    not_after=r.time,
                    standing=False,
                )
            )
        elif r.time < start:
            days = (start - r.time).total_seconds() / 86400
            out.append(
                _finding(
                    "certificate.expiry",
                    "medium",
                    r.time,
                    r.object,
                    f"Standing problem: {r.object} expired on {r.time:%Y-%m-%d} ({days:.0f} days before the "
                    f"window; {r.detail}) and is still there. It did not start this incident. " + renew,
                    [r.evidence],
                    10,
                    not_after=r.time,
                    standing=True,
                )
            )
        elif r.time <= end + config.cert_warning:
            out.append(
                _finding(
                    "certificate.expiry",
                    "medium",
                    r.time,
                    r.object,
                    f"{r.object} expires at {r.time:%Y-%m-%d}: not a cause yet, renew it soon.",
                    [r.evidence],
                    5,
                    not_after=r.time,
                    standing=True,
                )
            )
    if len(events):  # x509 errors are reported as Warning events (kubelet, controllers, webhooks)
        warn = events[(events["type"] == "Warning") & (events["time"] >= start) & (events["time"] <= end)]
        bad = warn[warn["message"].str.contains(_X509, case=False, regex=True, na=False)]
        if len(bad):
            out.append(
                _finding(
                    "certificate.expiry",
                    "critical",
                    bad["first_time"].min(),
                    ", ".join(bad["object"].unique()[:3]),
                    f"{int(bad['count'].sum())} x509 expiry error(s) from {_fmt(bad['first_time'].min())}"
                    f": {bad['message'].iloc[0][:160]}",
                    list(bad["event"].head(3)),
                    80,
                )
            )
    return out


# -- ASG / EC2 -------------------------------------------------------------------------------------
def detect_asg_termination(
    evidence: pd.DataFrame,
    instances: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    lost_nodes: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Instances of the cluster terminated (ASG activity or EC2 state) in the window, linked to their node."""
    if evidence.empty:
        return []
    rows = evidence[
        evidence["source"].isin(["asg", "ec2"])
        & evidence["what"].str.contains("terminated|shutting", regex=True)
        & (evidence["time"] >= start)
        & (evidence["time"] <= end)
    ]
    dns: dict[str, str] = {}
    if instances is not None and len(instances):
        dns = dict(zip(instances["instance_id"], instances["private_dns"], strict=False))
    out = []
    seen: set[str] = set()
    for r in rows.itertuples():
        m = re.search(r"i-[0-9a-f]{8,17}", f"{r.object} {r.detail}")
        iid = m.group(0) if m else str(r.object)
        if iid in seen:
            continue
        seen.add(iid)
        node = dns.get(iid, "")
        linked = bool(node and lost_nodes and node in lost_nodes)
        msg = (
            f"Instance {iid}{' (node ' + node + ')' if node else ''} terminated at {_fmt(r.time)}: {r.detail}"
            + (". This is why the node was lost." if linked else ".")
            + " Check the ASG activity cause (health check, spot interruption, scale-in, manual)."
        )
        out.append(
            _finding(
                "asg.terminated",
                "critical" if linked else "high",
                r.time,
                f"Instance/{iid}",
                msg,
                [r.evidence],
                90 if linked else 45,
                instance_id=iid,
                node=node,
            )
        )
    return out


# -- consumer stalled ------------------------------------------------------------------------------
def detect_consumer_stalled(
    metrics: pd.DataFrame, owners: dict[str, str] | None = None, zero: float = 1e-6
) -> list[dict[str, Any]]:
    """A queue backs up while its consumers' throughput is flat at zero ("stuck reading from a queue").

    A growing extra metric (the queue depth) and, in the same namespace with the same dimension values
    (the ``(…)`` part of the series id), a metric that was positive before the growth began and stays
    at zero after it (acks, deliveries, throughput): the consumer is connected but not consuming.
    Running/Ready pods, no restarts, no node or credit problem are what makes it hard to see; when
    credits are exhausted at the same time, ``cpu.credits`` explains the backlog instead.

    Args:
        metrics: metrics frame (time, namespace, metric, id, value).
        owners: series id → ``ns/deployment`` consuming it (``extra_metrics`` entries with ``@owner``).
        zero: throughput at or below this counts as zero.
    """
    if metrics.empty:
        return []
    extra = metrics[metrics["namespace"] != "AWS/EC2"]
    if extra.empty:
        return []
    owners = owners or {}
    out = []
    for g in growth(metrics).itertuples():
        suffix = str(g.id)[len(str(g.metric)):]
        sib = extra[
            (extra["namespace"] == g.namespace)
            & (extra["metric"] != g.metric)
            & (extra["id"].astype(str).str.endswith(suffix) if suffix else True)
        ]
        for (metric, sid), s in sib.groupby(["metric", "id"]):
            before = s[s["time"] < g.onset]["value"]
            after = s[s["time"] >= g.onset]["value"]
            if len(after) < 3 or not (after.abs() <= zero).all() or not (before > zero).any():
                continue
            stopped = s[(s["time"] < g.onset) & (s["value"] > zero)]["time"].max()
            t0 = s[(s["time"] > stopped) & (s["value"].abs() <= zero)]["time"].min()
            owner = owners.get(str(g.id)) or owners.get(str(sid)) or ""
            restart = (
                f"`kubectl -n {owner.split('/')[0]} rollout restart deployment/{owner.split('/')[1]}`"
                if owner
                else "the queue's consumer Deployment (`kubectl rollout restart`)"
            )
            out.append(
                _finding(
                    "consumer.stalled",
                    "high",
                    t0,
                    f"Deployment/{owner}" if owner else f"Metric/{g.metric}/{g.id}",
                    f"Queue {g.id} ({g.namespace}) grows from {_fmt(g.onset)} ({g.base:g} → {g.peak:g}) while "
                    f"{metric} stays at 0 since {_fmt(t0)}: its consumers are connected but stuck (pods "
                    "can be Running and Ready with no restarts). Take a thread dump / logs of the consumer, "
                    f"then restart it: {restart}.",
                    [f"CloudWatch {g.namespace} {g.metric} ({g.id})", f"CloudWatch {g.namespace} {metric} ({sid})"],
                    70,
                    queue=str(g.id),
                    throughput_metric=str(sid),
                    throughput_zero_at=t0,
                    backlog_onset=g.onset,
                    owner=owner,
                )
            )
            break
    return out


# -- merges: one incident, one cause -----------------------------------------------------------------
ZONE_BEHAVIOUR = (
    "The node lifecycle controller (kube-controller-manager, ComputeZoneState) counts a zone as "
    "FullDisruption when none of its nodes is Ready and PartialDisruption when more than 2 are NotReady "
    "and they are at least --unhealthy-zone-threshold (0.55) of it; in a partially disrupted zone it "
    "taints/evicts at --secondary-node-eviction-rate (0.01 nodes/s), or not at all when the cluster has "
    "at most --large-cluster-size-threshold (50) nodes; a fully disrupted zone evicts at the normal "
    "--node-eviction-rate (0.1 nodes/s) unless every zone is fully disrupted, when it stops evicting "
    "everywhere (it assumes its own network is cut off)."
)


def merge_zone_outage(found: list[dict[str, Any]], instances: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Replace the ``node.lost`` findings of every node of one availability zone by one ``zone.outage``.

    A zone counts as out when it has at least two nodes (EC2 instances not terminated, named by their
    private DNS as kops names its nodes) and every one of them is lost (critical/high ``node.lost``).
    """
    if instances is None or not len(instances) or "zone" not in instances:
        return found
    live = instances[instances["state"] != "terminated"]
    zone_of = dict(zip(live["private_dns"], live["zone"], strict=False))
    size = live.groupby("zone")["private_dns"].nunique().to_dict()
    lost = [
        f for f in found
        if f["check"] == "node.lost" and f["severity"] in ("critical", "high")
        and zone_of.get(f["object"].split("/", 1)[1])
    ]
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for f in lost:
        by_zone.setdefault(zone_of[f["object"].split("/", 1)[1]], []).append(f)
    out = list(found)
    for zone, fs in by_zone.items():
        if size.get(zone, 0) < 2 or len(fs) < size[zone]:
            continue
        nodes = sorted(f["object"].split("/", 1)[1] for f in fs)
        pods = sorted({p for f in fs for p in f["data"].get("evicted_pods", [])})
        workloads: dict[str, int] = {}
        for f in fs:
            for w, k in (f["data"].get("workloads") or {}).items():
                workloads[w] = workloads.get(w, 0) + k
        t0 = min(pd.Timestamp(f["time"]) for f in fs if f["time"] is not None and not pd.isna(f["time"]))
        others = sorted(z for z in size if z != zone)
        msg = (
            f"Zone {zone} lost: all {len(nodes)} of its nodes stopped heartbeating from {_fmt(t0)} "
            f"({', '.join(nodes)}); {len(pods)} pod(s) evicted"
            + (f" ({', '.join(pods[:6])}{' …' if len(pods) > 6 else ''})" if pods else "")
            + (
                "; workloads that lost capacity: "
                + ", ".join(f"{w} ({k})" for w, k in sorted(workloads.items()))
                if workloads
                else ""
            )
            + f". Other zones: {', '.join(others) or 'none'}. {ZONE_BEHAVIOUR} Check the zone's AWS health "
            "(network, EC2 status) rather than each node; spread workloads over zones "
            "(topologySpreadConstraints)."
        )
        merged = _finding(
            "zone.outage",
            "critical",
            t0,
            f"Zone/{zone}",
            msg,
            [e for f in fs for e in f["evidence"].split("; ")][:8],
            max(f["score"] for f in fs) + 10,
            zone=zone,
            nodes=nodes,
            evicted_pods=pods,
            workloads=workloads,
            evictions=len(pods),
        )
        out = [f for f in out if f not in fs] + [merged]
    return out


def merge_ec2_death(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge an ``asg.terminated`` linked to a lost node into that ``node.lost`` (one EC2 death, one cause).

    The merged finding keeps the node as its object, begins at the earlier of the two times, and carries
    both pieces of evidence (the instance's termination and the node's loss and evictions).
    """
    by_node = {f["object"].split("/", 1)[1]: f for f in found if f["check"] == "node.lost"}
    out: list[dict[str, Any]] = []
    merged: dict[str, dict[str, Any]] = {}
    for f in found:
        node = f["data"].get("node") if f["check"] == "asg.terminated" else None
        if node and node in by_node:
            merged[node] = f
        else:
            out.append(f)
    for i, f in enumerate(out):
        if f["check"] != "node.lost":
            continue
        term = merged.get(f["object"].split("/", 1)[1])
        if term is None:
            continue
        times = [pd.Timestamp(t) for t in (f["time"], term["time"]) if t is not None and not pd.isna(t)]
        data = {**f["data"], "instance_id": term["data"]["instance_id"], "terminated": term["time"]}
        out[i] = {
            **f,
            "severity": "critical",
            "time": min(times) if times else f["time"],
            "message": f"EC2 death: instance {term['data']['instance_id']} was terminated at "
            f"{_fmt(term['time'])} and its node was lost. " + f["message"],
            "evidence": "; ".join(dict.fromkeys([*term["evidence"].split("; "), *f["evidence"].split("; ")])),
            "score": max(f["score"], term["score"]) + 5,
            "data": data,
        }
    return out


# -- all ------------------------------------------------------------------------------------------
def run_detectors(
    events: pd.DataFrame,
    evidence: pd.DataFrame | Sequence[pd.DataFrame],
    metrics: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    instances: pd.DataFrame | None = None,
    config: Config = Config(),
    owners: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Run every detector and rank the likely causes.

    Args:
        events: normalised events (:func:`opsbook.k8s.events.normalise_events`), any window.
        evidence: evidence rows (Kubernetes state, AWS): one frame or several.
        metrics: metrics frame (time, namespace, metric, id, value), or None.
        start: window start (UTC).
        end: window end (UTC).
        instances: the cluster's instances (instance_id, instance_type, private_dns) to name things.
        config: configured delays to compare with.
        owners: extra-metric series id → ``ns/deployment`` behind it (``consumer.stalled`` names it).

    Returns:
        Findings (:data:`FINDING_COLUMNS`), rank 1 = the most likely cause; empty when nothing fired.
    """
    if not isinstance(evidence, pd.DataFrame):
        frames = [e for e in evidence if len(e)]
        evidence = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(
                {c: pd.Series(dtype="datetime64[ns, UTC]" if c == "time" else "object") for c in ROW_COLUMNS}
            )
        )
    if metrics is None:
        metrics = pd.DataFrame(
            {c: pd.Series(dtype="object") for c in ("time", "namespace", "metric", "id", "value")}
        )
    ev = events
    if len(ev):
        ev = ev[(ev["time"] >= start) & (ev["first_time"].fillna(ev["time"]) <= end)]
        # a repeated event that began before the window: its only occurrence known to be inside is the last
        ev = ev.assign(first_time=ev["first_time"].where(ev["first_time"] >= start, ev["time"]))
    evd = evidence
    if len(evd):
        evd = evd[
            evd["time"].isna()
            | ((evd["time"] >= start) & (evd["time"] <= end))
            | (evd["source"] == "certificate")
        ]
    found: list[dict[str, Any]] = []
    lost = detect_node_lost(ev, evd, config, history_events=events, history=evidence)
    found += lost
    lost_nodes = {f["object"].split("/", 1)[1] for f in lost if f["data"].get("evictions")}
    runs: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: detect_control_plane_restart(ev, evd, start, end),
        lambda: detect_cpu_credits(metrics, instances, config),
        lambda: detect_crashloop_after_rollout(ev, evd, config, evidence),
        lambda: detect_unready_after_rollout(ev, evd, config, evidence),
        lambda: detect_certificate_expiry(ev, evidence, start, end, config),
        lambda: detect_asg_termination(evd, instances, start, end, lost_nodes),
    ]
    for run in runs:
        found += run()
    found += detect_consumer_stalled(metrics, owners)
    found = merge_ec2_death(found)
    found = merge_zone_outage(found, instances)
    if not found:
        return _empty_findings()
    return rank(pd.DataFrame(found), start, end, config)


_STRONG = {"critical": 0, "high": 0, "medium": 1, "low": 2, "info": 2}
_KIND_ORDER = {"cause": 0, "standing": 1, "noise": 2}


def _lead(f: pd.Series, start: pd.Timestamp, config: Config) -> pd.Timedelta:
    if f["check"] == "cpu.credits":
        onset = (f["data"] or {}).get("backlog_onset")
        if onset is not None and not pd.isna(onset) and pd.Timestamp(onset) >= start:
            return config.credit_backlog_horizon
    return config.cause_lead


def rank(found: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, config: Config = Config()) -> pd.DataFrame:
    """Apply the ranking rule (module docstring) to raw detector findings.

    Returns:
        Findings (:data:`FINDING_COLUMNS`): causes first (rank 1 = most likely), then standing problems,
        then noise; ``kind`` says which.
    """
    df = found.copy()
    df["time"] = pd.to_datetime(df["time"], utc=True)

    def kind(f: pd.Series) -> str:
        data = f["data"] or {}
        if data.get("standing"):
            return "standing"
        t = f["time"]
        if not pd.isna(t) and (t < start - _lead(f, start, config) or t > end):
            return "standing"
        if f["severity"] in ("low", "info"):
            return "noise"
        return "cause"

    df["kind"] = [kind(f) for _, f in df.iterrows()]
    standing = df["kind"] == "standing"
    df.loc[standing & df["severity"].isin(["critical", "high"]), "severity"] = "medium"
    df["_k"] = df["kind"].map(_KIND_ORDER)
    df["_s"] = df["severity"].map(_STRONG).fillna(2)
    df["_t"] = df["time"].where(df["kind"] == "cause")
    df = df.sort_values(
        ["_k", "_s", "_t", "score", "time"], ascending=[True, True, True, False, True], kind="stable",
        na_position="last",
    ).reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df[FINDING_COLUMNS]


def as_report_findings(findings: pd.DataFrame, limit: int = 10) -> list[dict[str, Any]]:
    """Findings as records for :func:`opsbook.report.findings` (group ``outage``)."""
    return [
        {
            "check": r.check,
            "severity": r.severity,
            "object": r.object,
            "group": "outage",
            "message": (
                f"#{r.rank} likely cause: {r.message}" if r.kind == "cause" else f"({r.kind}) {r.message}"
            ),
            "evidence": r.evidence,
            "data": {"rank": int(r.rank), "kind": r.kind, "score": float(r.score), "time": str(r.time)},
        }
        for r in findings.head(limit).itertuples()
    ]


def summary(findings: pd.DataFrame) -> dict[str, Any]:
    """What a scheduled run keeps: the number of likely causes and standing problems, and the top cause."""
    if findings.empty:
        return {"causes": 0, "standing": 0, "top": None}
    causes = findings[findings["kind"] == "cause"] if "kind" in findings else findings
    top = causes.iloc[0] if len(causes) else None
    return {
        "causes": len(causes),
        "standing": int((findings["kind"] == "standing").sum()) if "kind" in findings else 0,
        "top": None
        if top is None
        else {
            "check": top["check"],
            "object": top["object"],
            "severity": top["severity"],
            "time": str(top["time"]),
        },
    }
