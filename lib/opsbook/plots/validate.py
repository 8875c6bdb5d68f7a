"""Pictures for the validate-cluster runbook: score per check group, node readiness, pods by phase.

Each function takes the snapshot's DataFrames and return a matplotlib Figure
(no pyplot state, safe under the Agg backend and in headless runs).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from opsbook.analysis.validate import ValidationRun

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


SCORE_COLORS = {"pass": "#2ca02c", "info": "#9e9e9e", "finding": "#d62728"}


def score_table(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Evaluations per check group: ``pass`` (no severity), ``info`` and ``finding`` (above info).

    Args:
        evaluations: ``Validation.evaluations`` (``group, severity`` at least).

    Returns:
        Index ``group``; columns ``pass, info, finding`` and ``score`` (percent without a finding above info).
    """
    cols = ["pass", "info", "finding"]
    if evaluations.empty:
        return pd.DataFrame(columns=[*cols, "score"]).rename_axis("group")
    kind = evaluations["severity"].map(lambda s: "pass" if not s else "info" if s == "info" else "finding")
    table = pd.crosstab(evaluations["group"], kind).reindex(columns=cols, fill_value=0)
    table["score"] = (100.0 * (1 - table["finding"] / table[cols].sum(axis=1))).round(1)
    table.index.name = "group"
    return table


def score_by_group(evaluations: pd.DataFrame, score: float | None = None) -> Figure:
    """Horizontal stacked bars of evaluations per check group (pass / info / finding), the score in the title."""
    table = score_table(evaluations)
    fig = Figure(figsize=(8, 1.5 + 0.4 * max(len(table), 1)), layout="constrained")
    ax = fig.add_subplot()
    left = pd.Series(0, index=table.index)
    for col, color in SCORE_COLORS.items():
        vals = table[col].astype(int)
        if vals.sum():
            ax.barh(table.index, vals, left=left, color=color, label=col)
        left = left + vals
    total = int(table[["pass", "info", "finding"]].to_numpy().sum()) if len(table) else 0
    passing = total - int(table["finding"].sum()) if len(table) else 0
    shown = f"{score:.1f}%" if score is not None else "n/a"
    ax.set_title(f"Score {shown}: {passing} of {total} evaluations without a finding above info")
    ax.set_xlabel("evaluations")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()
    if len(table):  # below the axes: a legend inside would hide the end of the longest bar
        fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    return fig


def run_score(run: ValidationRun) -> Figure:
    """:func:`score_by_group` for a validation run's last attempt (an empty chart when none completed)."""
    if run.last is None:
        return score_by_group(pd.DataFrame(columns=["group", "severity"]), None)
    return score_by_group(run.last.evaluations, run.last.score)
