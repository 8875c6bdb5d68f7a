"""Group ``nodes``: pressure, cordoned, burstable instance types."""

from __future__ import annotations

import pandas as pd

from opsbook.analysis.validate.frames import _evals
from opsbook.data.tables import is_burstable


def check_node_pressure(nodes: pd.DataFrame) -> pd.DataFrame:
    """``nodes.pressure``: no Memory/Disk/PID pressure."""
    return _evals("nodes.pressure", nodes, nodes["pressure"] != "", "high",
                  lambda r: (f"node {r.name} reports {r.pressure}: the kubelet evicts pods; "
                             "free or add capacity."),
                  lambda r: f"kubectl describe node {r.name}")


def check_node_unschedulable(nodes: pd.DataFrame) -> pd.DataFrame:
    """``nodes.unschedulable``: cordoned nodes (forgotten after maintenance?)."""
    return _evals("nodes.unschedulable", nodes, nodes["unschedulable"].astype(bool), "low",
                  lambda r: (f"node {r.name} is cordoned: `kubectl uncordon {r.name}` "
                             "when maintenance is done."))


def burstable(instance_type: str) -> bool:
    """Whether an EC2 instance type earns CPU credits (t2, t3, t3a, t4g): it is in the credit table."""
    return is_burstable(instance_type)


def check_node_burstable(nodes: pd.DataFrame) -> pd.DataFrame:
    """``nodes.burstable``: nodes on burstable instance types, for the CPU-credit review."""
    mask = nodes["instance_type"].map(burstable).astype(bool) if not nodes.empty else None
    return _evals("nodes.burstable", nodes, mask, "info",
                  lambda r: (f"node {r.name} runs on burstable {r.instance_type}: review its CPU credits "
                             "(cpu-credits runbook)."))
