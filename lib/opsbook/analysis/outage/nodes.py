"""``node.lost``: a node stopped heartbeating → NotReady → NoExecute taint → pods evicted → replacements."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import Config, _finding, _fmt, _secs
from opsbook.report import POD_SUFFIX, object_id

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

    ``deployment/ns/name`` when its ReplicaSet is known from the rollout rows, else
    ``replicaset/ns/<pod minus its hash>``.
    """
    ns, name = pod.split("/", 1)
    rs = POD_SUFFIX.sub("", name)
    if rollouts is not None and len(rollouts):
        hit = rollouts[rollouts["what"].str.startswith(f"ReplicaSet {rs} ", na=False)]
        hit = hit[hit["object"].str.startswith(object_id("Deployment", "", ns), na=False)]
        if len(hit):
            return str(hit["object"].iloc[0])
    return object_id("ReplicaSet", rs, ns)




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
                t_ok = ready[ready["object"] == object_id("Node", n)]["time"].max()
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
        obj = object_id("Node", node)
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
        rs_names = {POD_SUFFIX.sub("", p) for p in pods_evicted}
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
