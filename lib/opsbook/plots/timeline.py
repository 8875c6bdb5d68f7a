"""Swimlane plot of an incident timeline, with metric panels underneath.

One lane per source/object (the most severe lanes first, at most ``max_lanes``),
one marker per timeline row (colour = severity, size grows with the count, a bar
for rows that lasted), the incident window shaded, alert times as vertical lines,
and one panel per metric below, sharing the time axis.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from opsbook.report import SEVERITY_RANK

SEVERITY_COLOURS = {
    "info": "#9e9e9e",
    "low": "#42a5f5",
    "medium": "#fbc02d",
    "high": "#fb8c00",
    "critical": "#e53935",
}


def swimlanes(
    timeline: pd.DataFrame,
    metrics: pd.DataFrame | None = None,
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    alerts: dict[str, pd.Timestamp] | None = None,
    max_lanes: int = 25,
    max_panels: int = 4,
    title: str = "",
) -> Figure:
    """Draw the timeline as swimlanes with metric panels.

    Args:
        timeline: a collapsed timeline (:data:`opsbook.analysis.timeline.TIMELINE_COLUMNS`).
        metrics: metrics frame (time, namespace, metric, id, value); one panel per metric name.
        window: the incident window to shade.
        alerts: alert name → time, drawn as vertical lines.
        max_lanes: lanes to draw (the most severe, then the busiest).
        max_panels: metric panels to draw.
        title: figure title.

    Returns:
        A matplotlib Figure (not attached to pyplot; safe under the Agg backend).
    """
    metric_names = (
        list(dict.fromkeys(metrics["metric"]))[:max_panels] if metrics is not None and len(metrics) else []
    )
    lanes_df = (
        timeline.assign(lane=timeline["source"] + " · " + timeline["object"].str.slice(0, 60))
        if len(timeline)
        else timeline.assign(lane=pd.Series(dtype="object"))
    )
    if len(lanes_df):
        score = lanes_df.groupby("lane").agg(
            sev=("severity", lambda s: max(SEVERITY_RANK.get(x, 0) for x in s)),
            n=("count", "sum"),
            first=("time", "min"),
        )
        lanes = (
            score.sort_values(["sev", "n"], ascending=False)
            .head(max_lanes)
            .sort_values("first")
            .index.tolist()
        )
    else:
        lanes = []
    n_lanes = max(1, len(lanes))
    heights = [max(2.0, 0.32 * n_lanes)] + [1.6] * len(metric_names)
    fig = Figure(figsize=(13, sum(heights) + 1.2), constrained_layout=True)
    axes = fig.subplots(
        1 + len(metric_names), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights}
    )[:, 0]
    ax = axes[0]
    pos = {lane: i for i, lane in enumerate(lanes)}
    shown = lanes_df[lanes_df["lane"].isin(pos)] if len(lanes_df) else lanes_df
    for sev, g in shown.groupby("severity") if len(shown) else []:
        y = g["lane"].map(pos)
        colour = SEVERITY_COLOURS.get(str(sev), "#000000")
        lasting = g["last_time"] > g["time"]
        for r, yy in zip(g[lasting].itertuples(), y[lasting], strict=False):
            ax.plot(
                [r.time, r.last_time], [yy, yy], color=colour, linewidth=4, alpha=0.5, solid_capstyle="butt"
            )
        ax.scatter(
            g["time"],
            y,
            s=20 + 12 * g["count"].clip(upper=20),
            color=colour,
            label=str(sev),
            edgecolors="black",
            linewidths=0.4,
            zorder=3,
        )
    ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
    ax.set_ylim(-0.7, n_lanes - 0.3)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    if len(shown):
        ax.legend(loc="upper right", fontsize=7, title="severity", title_fontsize=7)
    ax.set_title(title or "Incident timeline", fontsize=10)
    for i, name in enumerate(metric_names, start=1):
        assert metrics is not None
        m = metrics[metrics["metric"] == name]
        for sid, g in list(m.groupby("id", sort=False))[:8]:
            axes[i].plot(g["time"], g["value"], linewidth=1, label=str(sid)[:30])
        axes[i].set_ylabel(name, fontsize=7)
        axes[i].grid(alpha=0.3)
        axes[i].legend(loc="upper left", fontsize=6)
    for a in axes:
        if window is not None:
            a.axvspan(window[0], window[1], color="#ffcdd2", alpha=0.25, zorder=0)
        for name, t in (alerts or {}).items():
            a.axvline(t, color="#6a1b9a", linestyle="--", linewidth=1)
            if a is ax:
                a.annotate(
                    name.replace("_", " "),
                    (t, 0),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    rotation=90,
                    va="bottom",
                    ha="right",
                    color="#6a1b9a",
                )
    axes[-1].set_xlabel("time (UTC)")
    return fig
