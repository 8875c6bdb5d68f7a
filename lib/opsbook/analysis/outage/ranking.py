"""The ranking rule.

**The ranking rule.** A finding is a *likely cause* only if it began inside the
window, or at most ``Config.cause_lead`` (15 min) before it (for ``cpu.credits``
whose backlog grows inside the window: ``credit_backlog_horizon``, 6 h, because
credits run out hours before the queue backs up), and before its effects (each
detector checks its own order: heartbeat → NotReady → evictions; rollout →
crash; exhaustion → backlog). Anything older that is still wrong is a *standing
problem* (``kind="standing"``, severity capped at ``medium``: it was broken
before the incident began, so it cannot have started it); severity-``low``
findings (a node that flapped and recovered) are *noise*. Causes rank first:
``critical``/``high`` before ``medium``, then by start time, earliest first (an
earlier cause can explain a later one, never the reverse), then by score;
then standing problems, then noise. ``kind`` says which a finding is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsbook.analysis.outage.common import FINDING_COLUMNS, Config

_STRONG = {"critical": 0, "high": 0, "medium": 1, "low": 2, "info": 2}
_KIND_ORDER = {"cause": 0, "standing": 1, "noise": 2}


def _lead(f: pd.Series, start: pd.Timestamp, config: Config) -> pd.Timedelta:
    if f["check"] == "cpu.credits":
        onset = (f["data"] or {}).get("backlog_onset")
        if onset is not None and not pd.isna(onset) and pd.Timestamp(onset) >= start:
            return config.credit_backlog_horizon
    return config.cause_lead


def rank(found: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, config: Config = Config()) -> pd.DataFrame:
    """Apply the ranking rule (module docstring) to raw detector findings.

    Returns:
        Findings (:data:`FINDING_COLUMNS`): causes first (rank 1 = most likely), then standing problems,
        then noise; ``kind`` says which.
    """
    df = found.copy()
    df["time"] = pd.to_datetime(df["time"], utc=True)

    def kind(f: pd.Series) -> str:
        data = f["data"] or {}
        if data.get("standing"):
            return "standing"
        t = f["time"]
        if not pd.isna(t) and (t < start - _lead(f, start, config) or t > end):
            return "standing"
        if f["severity"] in ("low", "info"):
            return "noise"
        return "cause"

    df["kind"] = [kind(f) for _, f in df.iterrows()]
    standing = df["kind"] == "standing"
    df.loc[standing & df["severity"].isin(["critical", "high"]), "severity"] = "medium"
    df["_k"] = df["kind"].map(_KIND_ORDER)
    df["_s"] = df["severity"].map(_STRONG).fillna(2)
    df["_t"] = df["time"].where(df["kind"] == "cause")
    df = df.sort_values(
        ["_k", "_s", "_t", "score", "time"], ascending=[True, True, True, False, True], kind="stable",
        na_position="last",
    ).reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df[FINDING_COLUMNS]


