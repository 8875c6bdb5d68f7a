"""The cluster-inventory runbook's façade: Kubernetes nodes and EC2 instances side by side.

``notebooks/cluster-inventory.ipynb`` and the demo use this; it is also the first thing a new developer
should look at. Nodes are parsed once (:func:`opsbook.k8s.objects.node_row`, fetched by
:func:`opsbook.k8s.inventory.nodes`); instances come from the one cluster-instance lister
(:func:`opsbook.aws.asg.cluster_instances`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kubernetes import client as k8s
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import opsbook.plots  # noqa: F401 - shows returned Figures as PNG in notebooks
from opsbook.aws.asg import cluster_instances
from opsbook.aws.session import cluster_name as env_cluster_name
from opsbook.k8s import inventory
from opsbook.report import Finding

NODE_COLUMNS = ["node", "instance_group", "role", "instance_type", "zone", "instance_id", "ready", "age_h"]
INSTANCE_COLUMNS = [
    "instance_id",
    "instance_group",
    "instance_type",
    "zone",
    "state",
    "private_dns",
    "launch_time",
]


def nodes_table(api: k8s.ApiClient | None = None) -> pd.DataFrame:
    """The cluster's nodes.

    Returns:
        DataFrame with columns node, instance_group, role, instance_type, zone, instance_id, ready, age_h.
    """
    df = inventory.nodes(api).rename(columns={"name": "node"})
    df["age_h"] = ((pd.Timestamp.now(tz="UTC") - df["created"]).dt.total_seconds() / 3600).round(2)
    return df[NODE_COLUMNS].sort_values(["instance_group", "node"], ignore_index=True)


def instances_table(
    cluster_name: str, region: str | None = None, ec2: Any = None, max_age_days: int | None = None
) -> pd.DataFrame:
    """The cluster's EC2 instances (tag ``KubernetesCluster``), optionally only those launched recently.

    An empty ``cluster_name`` means ``$KOPS_CLUSTER_NAME``.

    Returns:
        DataFrame with columns instance_id, instance_group, instance_type, zone, state, private_dns, launch_time.
    """
    # terminated instances linger in describe output for about an hour: not inventory
    states = ("pending", "running", "stopping", "stopped")
    df = cluster_instances(cluster_name or env_cluster_name(), region, ec2, states)
    df = df[INSTANCE_COLUMNS]
    if max_age_days is not None and not df.empty:
        df = df[df["launch_time"] >= pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=max_age_days)]
    return df.sort_values(["instance_group", "instance_id"], ignore_index=True)


def side_by_side(nodes: pd.DataFrame, instances: pd.DataFrame) -> pd.DataFrame:
    """Join nodes and instances on instance id; rows with only one side are the interesting ones.

    Returns:
        DataFrame with columns instance_id, instance_group, instance_type, zone, state, node, ready, joined.
    """
    merged = instances.merge(nodes[["instance_id", "node", "ready"]], on="instance_id", how="outer")
    merged["joined"] = merged["node"].notna() & merged["state"].notna()
    cols = ["instance_id", "instance_group", "instance_type", "zone", "state", "node", "ready", "joined"]
    return merged[cols].sort_values(["instance_group", "instance_id"], ignore_index=True)


def mismatch_findings(joined: pd.DataFrame, not_joined_severity: str = "high") -> list[Finding]:
    """A finding for every running instance without a node and every node without an instance."""
    out: list[Finding] = []
    for row in joined.itertuples():
        if row.state == "running" and not isinstance(row.node, str):
            out.append(Finding(
                "inventory.instance-not-joined",
                not_joined_severity,
                "running EC2 instance has no Kubernetes node: it never joined or its kubelet is down",
                object=str(row.instance_id),
                group="inventory",
            ))
        elif isinstance(row.node, str) and not isinstance(row.state, str):
            out.append(Finding(
                "inventory.node-without-instance",
                "medium",
                "node's providerID points at no EC2 instance of this cluster",
                object=str(row.node),
                group="inventory",
            ))
    return out


def plot_nodes_by_group(nodes: pd.DataFrame) -> Figure:
    """Bar chart: nodes per instance group, split by readiness."""
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    if nodes.empty:
        ax.text(0.5, 0.5, "no nodes", ha="center", va="center")
        return fig
    counts = nodes.groupby(["instance_group", "ready"]).size().unstack(fill_value=0)
    colours = {"True": "#2e7d32", "False": "#b00020", "Unknown": "#9e9e9e"}
    bottom = None
    for state in counts.columns:
        vals = counts[state]
        ax.barh(counts.index, vals, left=bottom, label=f"Ready={state}", color=colours.get(state, "#555"))
        bottom = vals if bottom is None else bottom + vals
    ax.set_xlabel("nodes")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Nodes per instance group")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
