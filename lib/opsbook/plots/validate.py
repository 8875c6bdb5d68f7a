"""Pictures for the validate-cluster runbook: node readiness per instance group, pods by phase.

Both functions take the snapshot's DataFrames and return a matplotlib Figure
(no pyplot state, safe under the Agg backend and in headless runs).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

READY_COLORS = {"Ready": "#2ca02c", "NotReady": "#d62728", "Unknown": "#7f7f7f", "Missing": "#ff7f0e"}
PHASE_COLORS = {"Running": "#2ca02c", "Pending": "#ff7f0e", "Succeeded": "#1f77b4", "Failed": "#d62728",
                "Unknown": "#7f7f7f"}


def readiness_by_instance_group(nodes: pd.DataFrame, targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """Count nodes per instance group and readiness, plus the shortfall against the target.

    Args:
        nodes: ``Snapshot.nodes``.
        targets: ``instance_group, target`` (optional).

    Returns:
        Index ``instance_group``; columns ``Ready, NotReady, Unknown, Missing`` (target minus nodes, >= 0).
    """
    state = nodes["ready"].map({"True": "Ready", "False": "NotReady"}).fillna("Unknown")
    ig = nodes["instance_group"].replace("", "(no group)")
    table = pd.crosstab(ig, state).reindex(columns=["Ready", "NotReady", "Unknown"], fill_value=0)
    if targets is not None and not targets.empty:
        t = targets.set_index("instance_group")["target"].astype(int)
        table = table.reindex(table.index.union(t.index), fill_value=0)
        have = table[["Ready", "NotReady", "Unknown"]].sum(axis=1)
        table["Missing"] = (t.reindex(table.index).fillna(0).astype(int) - have).clip(lower=0)
    else:
        table["Missing"] = 0
    table.index.name = "instance_group"
    return table.astype(int)


def node_readiness(nodes: pd.DataFrame, targets: pd.DataFrame | None = None) -> Figure:
    """Horizontal stacked bars: Ready / NotReady / Unknown / missing nodes per instance group."""
    table = readiness_by_instance_group(nodes, targets)
    fig = Figure(figsize=(8, 1.5 + 0.4 * len(table)), layout="constrained")
    ax = fig.add_subplot()
    left = pd.Series(0, index=table.index)
    for col, color in READY_COLORS.items():
        vals = table[col] if col in table else pd.Series(0, index=table.index)
        if vals.sum():
            ax.barh(table.index, vals, left=left, color=color, label=col)
        left = left + vals
    ax.set_xlabel("nodes")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Node readiness by instance group")
    ax.invert_yaxis()
    if len(table):
        ax.legend(loc="lower right", fontsize="small")
    return fig


def pods_by_phase_table(pods: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Pods per namespace and phase, the ``top`` namespaces by pod count (the rest summed as ``(other)``)."""
    table = pd.crosstab(pods["namespace"], pods["phase"]) if not pods.empty else pd.DataFrame()
    if table.empty:
        return table
    table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
    if len(table) > top:
        rest = table.iloc[top:].sum().rename("(other)")
        table = pd.concat([table.iloc[:top], rest.to_frame().T])
    return table


def pods_by_phase(pods: pd.DataFrame, top: int = 15) -> Figure:
    """Stacked bars of pods per namespace by phase (largest namespaces first)."""
    table = pods_by_phase_table(pods, top)
    fig = Figure(figsize=(8, 1.5 + 0.4 * len(table)), layout="constrained")
    ax = fig.add_subplot()
    left = pd.Series(0, index=table.index)
    for phase in table.columns:
        color = PHASE_COLORS.get(str(phase), "#9467bd")
        ax.barh(table.index.astype(str), table[phase], left=left, color=color, label=str(phase))
        left = left + table[phase]
    ax.set_xlabel("pods")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Pods by phase per namespace")
    ax.invert_yaxis()
    if len(table):
        ax.legend(loc="lower right", fontsize="small")
    return fig
