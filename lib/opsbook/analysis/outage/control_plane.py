"""``control-plane.restart``: the API server restarted, a leader lease changed hands, control-plane pods restarted."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import _finding, _fmt
from opsbook.report import object_id

FIRST_START_MARGIN = pd.Timedelta(seconds=5)


def existed_before(t: pd.Timestamp, evidence: pd.DataFrame, events: pd.DataFrame) -> bool:
    """Whether the cluster held objects from before ``t``: a pod or ReplicaSet created, or an event first seen.

    Nothing can be created before the API server's first start, so an API server whose process started
    before every object it holds is a new cluster (or a sandbox just brought up), not a restart.
    """
    cutoff = t - FIRST_START_MARGIN
    if len(evidence):
        made = evidence[evidence["source"].isin(["pod", "rollout"])]
        if (made["time"] < cutoff).any():
            return True
    return bool(len(events) and (events["first_time"].fillna(events["time"]) < cutoff).any())


def detect_control_plane_restart(
    events: pd.DataFrame, evidence: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
    history: pd.DataFrame | None = None, history_events: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """API server restarted, leader leases changed hands, control-plane pods restarted, in the window.

    Args:
        events: normalised events inside the window.
        evidence: state rows inside the window (``control-plane`` rows say who started when).
        start: the window's start.
        end: the window's end.
        history: the evidence before the window filter (default ``evidence``).
        history_events: the events before the window filter (default ``events``). With ``history``, it
            tells a first start (no object older than the API server) from a restart.
    """
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
    if len(api) and not existed_before(api["time"].min(), evidence if history is None else history,
                                       events if history_events is None else history_events):
        api = api.iloc[:0]  # the API server's first start: a new cluster, nothing restarted
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
            object_id("ControlPlane", "kube-apiserver"),
            msg,
            ev,
            55 + 5 * len(leaders) + 5 * len(restarts),
            apiserver_started=api["time"].min(),
            leader_changes=len(leaders),
            pod_restarts=len(restarts),
        )
    ]


# -- metrics -----------------------------------------------------------------------------------------
