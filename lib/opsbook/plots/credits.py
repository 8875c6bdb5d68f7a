"""Plots of the cost / CPU-credit review: each function returns a matplotlib Figure (no pyplot state)."""

from __future__ import annotations

import math

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure

from opsbook.analysis.credits import wide


def credit_balance(metrics: pd.DataFrame, summary: pd.DataFrame, *, max_instances: int = 12) -> Figure:
    """CPUCreditBalance over time per burstable instance, with the exhaustion forecast dashed to zero.

    Args:
        metrics: long metric frame (``timestamp, instance_id, metric, value``).
        summary: from :func:`opsbook.analysis.credits.credit_summary`.
        max_instances: plot at most this many (the soonest to run out first).
    """
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    w = wide(metrics)
    burst = summary[summary["burstable"]].sort_values("hours_to_exhaustion").head(max_instances)
    for r in burst.itertuples():
        m = w[w["instance_id"] == r.instance_id] if "CPUCreditBalance" in w else w.iloc[0:0]
        if m.empty:
            continue
        line = ax.plot(m["timestamp"], m["CPUCreditBalance"], label=f"{r.instance_id} ({r.instance_type})")[0]
        hte = r.hours_to_exhaustion
        if hte == hte and math.isfinite(hte) and hte > 0:
            t0 = m["timestamp"].max()
            ax.plot(
                [t0, t0 + pd.Timedelta(hours=hte)], [r.balance_now, 0], linestyle="--", color=line.get_color()
            )
            ax.annotate(
                f"0 in {hte:.1f} h",
                (t0 + pd.Timedelta(hours=hte), 0),
                fontsize=8,
                color=line.get_color(),
                xytext=(0, 8),
                textcoords="offset points",
            )
    ax.set_title("CPU credit balance (dashed: forecast to exhaustion at the recent burn rate)")
    ax.set_ylabel("credits")
    ax.set_ylim(bottom=0)
    if ax.lines:
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no burstable instances with credit data", ha="center", transform=ax.transAxes)
    return fig


def cpu_vs_baseline(metrics: pd.DataFrame, summary: pd.DataFrame, *, max_instances: int = 12) -> Figure:
    """CPUUtilization per instance (one panel each) against its credit baseline."""
    w = wide(metrics)
    rows = summary.sort_values(["instance_group", "instance_id"]).head(max_instances)
    n = max(1, len(rows))
    cols = 2 if n > 1 else 1
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(10, 2.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False, sharex=True)
    for ax, r in zip(axes.flat, rows.itertuples(), strict=False):
        m = w[w["instance_id"] == r.instance_id] if "CPUUtilization" in w else w.iloc[0:0]
        if not m.empty:
            ax.plot(m["timestamp"], m["CPUUtilization"], linewidth=1)
        if r.baseline_pct == r.baseline_pct:
            ax.axhline(
                r.baseline_pct,
                color="tab:red",
                linestyle="--",
                linewidth=1,
                label=f"baseline {r.baseline_pct:.0f} %",
            )
            ax.legend(fontsize=7, loc="upper left")
        ax.set_title(f"{r.instance_group} · {r.instance_id} · {r.instance_type}", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("CPU %", fontsize=8)
        ax.tick_params(labelsize=7)
        loc = mdates.AutoDateLocator(maxticks=5)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))  # type: ignore[no-untyped-call]
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig


def monthly_cost(groups: pd.DataFrame) -> Figure:
    """Monthly cost per instance group: now vs the recommended option.

    Args:
        groups: from :func:`opsbook.analysis.credits.group_table`.
    """
    fig = Figure(figsize=(10, 0.6 * max(3, len(groups)) + 1), layout="constrained")
    ax = fig.add_subplot()
    y = range(len(groups))
    ax.barh([i + 0.2 for i in y], groups["monthly_now_usd"], height=0.4, label="now")
    ax.barh([i - 0.2 for i in y], groups["monthly_recommended_usd"], height=0.4, label="recommended")
    ax.set_yticks(
        list(y),
        [
            f"{g.instance_group}\n{g.instance_type} → {g.recommended_type} {g.recommended_mode}"
            for g in groups.itertuples()
        ],
        fontsize=8,
    )
    for i, g in enumerate(groups.itertuples()):
        ax.annotate(
            f"{g.monthly_delta_usd:+.2f} $/mo",
            (max(g.monthly_now_usd, g.monthly_recommended_usd), i),
            xytext=(4, -3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel("USD per month (730 h, incl. surplus credit charges)")
    ax.set_title("Monthly cost per instance group: now vs recommended")
    ax.legend(fontsize=8)
    return fig
