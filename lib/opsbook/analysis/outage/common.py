"""What every outage detector shares: the findings columns, the configured delays, small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

FINDING_COLUMNS = [
    "rank", "kind", "check", "severity", "time", "object", "message", "evidence", "score", "data",
]
"""Columns of a findings frame: ``rank`` (1 = most likely cause), ``kind`` (``cause``, ``standing``,
``noise``: see the ranking rule), ``check`` (detector id), ``severity``,
``time`` (when the cause began, UTC), ``object``, ``message``, ``evidence`` (``; ``-separated), ``score``,
``data`` (dict of measured values, e.g. delays)."""


@dataclass(frozen=True)
class Config:
    """What the cluster is configured to do, to compare with what happened.

    Production kops defaults: grace 40 s (50 s from Kubernetes 1.32), tolerations 300 s. The test
    sandbox uses 10 s and 10 s.
    """

    node_monitor_grace_s: float = 40
    toleration_s: float = 300
    rollout_lookback: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(minutes=30))
    credit_backlog_horizon: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=6))
    cert_warning: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=30))
    cause_lead: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(minutes=15))
    """How long before the window a cause may begin and still be ranked (the ranking rule)."""


def _empty_findings() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns, UTC]" if c == "time" else "object") for c in FINDING_COLUMNS}
    )


def _finding(
    check: str,
    severity: str,
    time: Any,
    obj: str,
    message: str,
    evidence: list[str],
    score: float,
    **data: Any,
) -> dict[str, Any]:
    return {
        "check": check,
        "severity": severity,
        "time": time,
        "object": obj,
        "message": message,
        "evidence": "; ".join(dict.fromkeys(e for e in evidence if e)),
        "score": float(score),
        "data": data,
    }


def _fmt(t: Any) -> str:
    return "?" if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%H:%M:%SZ")


def _secs(a: Any, b: Any) -> float | None:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return None
    return float((pd.Timestamp(b) - pd.Timestamp(a)).total_seconds())


def _col(df: pd.DataFrame | None, name: str) -> pd.Series:
    return df[name] if df is not None and name in df else pd.Series(dtype="object")


