"""``asg.terminated``: an instance of the cluster was terminated (ASG activity or EC2 state)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import _finding, _fmt
from opsbook.report import object_id


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
                object_id("Instance", iid),
                msg,
                [r.evidence],
                90 if linked else 45,
                instance_id=iid,
                node=node,
            )
        )
    return out


# -- consumer stalled ------------------------------------------------------------------------------
