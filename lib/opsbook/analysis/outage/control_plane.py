"""``control-plane.restart``: the API server restarted, a leader lease changed hands, control-plane pods restarted."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import _finding, _fmt
from opsbook.report import object_id


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
