"""Pictures for the upgrade-cluster runbook: ready pods per workload over the rolling update."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def ready_over_time(samples: pd.DataFrame, availability: pd.DataFrame | None = None,
                    steps: pd.DataFrame | None = None) -> Figure:
    """Ready pods of every workload against time since the probe started, as steps.

    Args:
        samples: the probe's samples (``t, workload, ready, ...``).
        availability: per workload (for the PDB's guaranteed count, drawn dotted).
        steps: the rollout's steps (``node``, ``drain_s``...), written in the title.
    """
    fig = Figure(figsize=(9, 4.2))
    ax = fig.add_subplot()
    if samples.empty:
        ax.text(0.5, 0.5, "no samples (dry run: nothing was rolled)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    pdb = {}
    if availability is not None and len(availability):
        pdb = {r.workload: r.pdb_min_ready for r in availability.itertuples() if r.pdb_min_ready is not None
               and not pd.isna(r.pdb_min_ready)}
    for i, (wl, g) in enumerate(samples.sort_values("t", kind="stable").groupby("workload", sort=True)):
        color = f"C{i % 10}"
        ax.step(g["t"], g["ready"], where="post", label=wl, color=color, linewidth=1.6)
        if wl in pdb:
            ax.axhline(pdb[wl], color=color, linestyle=":", linewidth=1)
    ax.set_xlabel("seconds since the upgrade started")
    ax.set_ylabel("ready pods")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=-0.2)
    n = 0 if steps is None else len(steps)
    ax.set_title(f"ready pods per workload while {n} node(s) rolled (dotted: PDB minimum)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
