"""Evaluation frames: one row per object a check looked at, a severity when it failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from opsbook.analysis.validate.catalog import CHECKS, EVAL_COLUMNS


def _evals(check: str, df: pd.DataFrame, mask: pd.Series | None, severity: str | pd.Series,
           message: Callable[[Any], str], evidence: Callable[[Any], str] | None = None) -> pd.DataFrame:
    """One evaluation per row of ``df``; rows where ``mask`` is true fail with ``severity``."""
    ns = df["namespace"] if "namespace" in df else pd.Series("", index=df.index)
    out = pd.DataFrame({"check": check, "group": CHECKS[check], "object": df["object"].to_numpy(),
                        "namespace": ns.to_numpy(), "severity": "", "message": "", "evidence": ""},
                       columns=EVAL_COLUMNS)
    if mask is None or df.empty:
        return out
    m = mask.to_numpy(dtype=bool)
    if not m.any():
        return out
    failing = df[m]
    sev = severity[m].to_numpy() if isinstance(severity, pd.Series) else severity
    out.loc[m, "severity"] = sev
    out.loc[m, "message"] = [message(r) for r in failing.itertuples(index=False)]
    if evidence:
        out.loc[m, "evidence"] = [evidence(r) for r in failing.itertuples(index=False)]
    return out


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=EVAL_COLUMNS)
