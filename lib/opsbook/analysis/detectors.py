"""Detectors for the failure modes the team has lived through (pure: DataFrames in, findings out).

Each detector looks at the normalised events, the evidence rows (Kubernetes
state, AWS) and the metrics, and returns *likely-cause* findings: a severity,
the time the cause began, the object, a message saying what happened and what
to do, the evidence to look at, and a score. :func:`run_detectors` ranks them
(1 = most likely cause).

Detectors:

- ``node.lost``: a node stopped heartbeating → NotReady → NoExecute taint → pods
  evicted → replacements, with the actual delays against the configured
  ``node-monitor-grace-period`` and toleration seconds. Nodes that only flapped
  NotReady (no evictions) score low.
- ``control-plane.restart``: the API server's process started in the window; the
  controller-manager/scheduler leader lease changed hands; control-plane pods restarted.
- ``cpu.credits``: CPUCreditBalance ≈ 0 with CPUUtilization flat at a baseline,
  scored higher when it precedes the growth of an extra metric (backlog, latency).
- ``rollout.crashloop``: pods crash-looping shortly after their ReplicaSet was created.
- ``certificate.expiry``: a certificate expired before the window's end, or x509 errors.
- ``asg.terminated``: an instance of the cluster was terminated (ASG activity or EC2 state).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

_ROW_COLUMNS = ["time", "source", "object", "what", "detail", "severity", "evidence"]
FINDING_COLUMNS = ["rank", "check", "severity", "time", "object", "message", "evidence", "score", "data"]
"""Columns of a findings frame: ``rank`` (1 = most likely cause), ``check`` (detector id), ``severity``,
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
    """Map ``ns/pod`` → node name, from scheduler events and pod state rows (``only``: these pod names)."""
    out: dict[str, str] = {}
    sched = events[events["reason"] == "Scheduled"] if len(events) else events
    if only is not None and len(sched):
        sched = sched[sched["name"].isin(only)]
    for m in sched["message"].str.extract(_ASSIGNED).dropna().itertuples():
        out[f"{m.ns}/{m.pod}"] = str(m.node)
    if len(evidence):
        created = evidence[
            (evidence["source"] == "pod")
            & (evidence["what"] == "created")
            & evidence["detail"].str.startswith("on node ")
        ]
        for r in created.itertuples():
            out.setdefault(str(r.object)[4:], str(r.detail)[8:])
    return out


def detect_node_lost(
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config()
) -> list[dict[str, Any]]:
    """Node lost → taint → evictions → replacements, with actual vs configured delays."""
    if events.empty and evidence.empty:
        return []
    nodes_nr = events[(events["reason"] == "NodeNotReady") & (events["kind"] == "Node")]
    tme = events[events["reason"] == "TaintManagerEviction"]
    placed = pod_nodes(events, evidence, set(tme["name"]))
    marks = tme[tme["message"].str.startswith("Marking", na=False)]
    ev_pods = marks["message"].str.extract(_MARKING)
    marks = marks.assign(pod=(ev_pods["ns"] + "/" + ev_pods["pod"]).values)
    marks = marks.assign(node=marks["pod"].map(placed))
    cancels = tme[tme["message"].str.startswith("Cancelling", na=False)]
    cp = cancels["message"].str.extract(_CANCEL)
    cancel_nodes = (cp["ns"] + "/" + cp["pod"]).map(placed)
    node_rows = evidence[evidence["source"] == "node"] if len(evidence) else evidence
    candidates = set(nodes_nr["name"]) | set(marks["node"].dropna())
    if len(node_rows):
        bad = node_rows[node_rows["what"].isin(["Ready=Unknown", "Ready=False"])]
        candidates |= {o.split("/", 1)[1] for o in bad["object"]}
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
        n_ev = int(evicted["pod"].nunique())
        t_ev = evicted["time"].min() if n_ev else None
        n_cancel = int((cancel_nodes == node).sum())
        # replacements: pods created by the evicted pods' ReplicaSets after the first eviction
        rs_names = set(evicted["pod"].str.replace(r"-[a-z0-9]{5}$", "", regex=True))
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
    cols = ["time", "source", "object", "what", "detail", "severity", "evidence"]
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
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config()
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
        crash, evidence, config, "rollout.crashloop", "crash-looping",
        "then read the logs of the new version", 65,
    )


def detect_unready_after_rollout(
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config()
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
        unready, evidence, config, "rollout.unready", "failing readiness",
        "then check the new version's compatibility with its data (e.g. MongoDB featureCompatibilityVersion)",
        60,
    )


def _after_rollout(
    hits: list[tuple[str, Any, str]], evidence: pd.DataFrame, config: Config, check: str, what: str,
    advice: str, base_score: int,
) -> list[dict[str, Any]]:
    """Findings for pods (``ns/pod``, time, evidence) whose ReplicaSet was created shortly before."""
    if not hits:
        return []
    cdf = pd.DataFrame(hits, columns=["pod", "time", "evidence"])
    cdf["rs"] = cdf["pod"].str.replace(r"-[a-z0-9]{5}$", "", regex=True)
    ro = evidence[evidence["source"] == "rollout"] if len(evidence) else evidence
    rs_created: dict[str, tuple[Any, str, str]] = {}
    for r in ro.itertuples():
        rs = str(r.what).removeprefix("ReplicaSet ").removesuffix(" created")
        ns = str(r.object).split("/")[1]
        rs_created[f"{ns}/{rs}"] = (r.time, str(r.object), str(r.detail))
    out = []
    for rs, g in cdf[cdf["rs"].isin(set(rs_created))].groupby("rs"):
        t_rollout, deploy, detail = rs_created[rs]
        t_hit = g["time"].min()
        if pd.isna(t_hit) or not (t_rollout <= t_hit <= t_rollout + config.rollout_lookback):
            continue
        lag = (t_hit - t_rollout).total_seconds()
        ns, name = deploy.split("/")[1], deploy.split("/")[-1]
        msg = (
            f"{g['pod'].nunique()} pod(s) of ReplicaSet {rs} {what} from {_fmt(t_hit)}, {lag:.0f} s "
            f"after the rollout at {_fmt(t_rollout)} ({detail}). Roll back: "
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
    """Certificates that expired before the window's end (or soon after), and x509 expiry errors."""
    out = []
    certs = evidence[evidence["source"] == "certificate"] if len(evidence) else evidence
    for r in certs.itertuples():
        if r.time <= end:
            out.append(
                _finding(
                    "certificate.expiry",
                    "critical",
                    r.time,
                    r.object,
                    f"{r.object} expired at {r.time:%Y-%m-%d %H:%M}Z ({r.detail}). "
                    + (f"Renew it with its issuer and replace the secret (`kubectl -n "
                       f"{str(r.object).split('/')[1]} create secret tls ... --dry-run=client -o yaml | "
                       "kubectl apply -f -`), then restart "
                       "the workloads that mount it."
                       if str(r.object).startswith("Secret/") else
                       "Renew it (kops: `kops rolling-update cluster --force` after `kops update cluster`, "
                       "or rotate the CA per the kops docs)."),
                    [r.evidence],
                    85,
                    not_after=r.time,
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


# -- all ------------------------------------------------------------------------------------------
def run_detectors(
    events: pd.DataFrame,
    evidence: pd.DataFrame | Sequence[pd.DataFrame],
    metrics: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    instances: pd.DataFrame | None = None,
    config: Config = Config(),
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

    Returns:
        Findings (:data:`FINDING_COLUMNS`), rank 1 = the most likely cause; empty when nothing fired.
    """
    if not isinstance(evidence, pd.DataFrame):
        frames = [e for e in evidence if len(e)]
        evidence = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(
                {c: pd.Series(dtype="datetime64[ns, UTC]" if c == "time" else "object") for c in _ROW_COLUMNS}
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
    lost = detect_node_lost(ev, evd, config)
    found += lost
    lost_nodes = {f["object"].split("/", 1)[1] for f in lost if f["data"].get("evictions")}
    runs: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: detect_control_plane_restart(ev, evd, start, end),
        lambda: detect_cpu_credits(metrics, instances, config),
        lambda: detect_crashloop_after_rollout(ev, evd, config),
        lambda: detect_unready_after_rollout(ev, evd, config),
        lambda: detect_certificate_expiry(ev, evidence, start, end, config),
        lambda: detect_asg_termination(evd, instances, start, end, lost_nodes),
    ]
    for run in runs:
        found += run()
    if not found:
        return _empty_findings()
    df = pd.DataFrame(found)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df = df.sort_values(["score", "time"], ascending=[False, True], kind="stable").reset_index(drop=True)
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
            "message": f"#{r.rank} likely cause: {r.message}",
            "evidence": r.evidence,
            "data": {"rank": int(r.rank), "score": float(r.score), "time": str(r.time)},
        }
        for r in findings.head(limit).itertuples()
    ]


def summary(findings: pd.DataFrame) -> dict[str, Any]:
    """What a scheduled run keeps: the number of likely causes and the top one."""
    if findings.empty:
        return {"causes": 0, "top": None}
    top = findings.iloc[0]
    return {
        "causes": len(findings),
        "top": {
            "check": top["check"],
            "object": top["object"],
            "severity": top["severity"],
            "time": str(top["time"]),
        },
    }
