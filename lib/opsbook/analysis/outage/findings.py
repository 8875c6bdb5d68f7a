"""Findings as report records and the summary a scheduled run keeps."""

from __future__ import annotations

from typing import Any

import pandas as pd


def outage_findings(findings: pd.DataFrame, limit: int = 10) -> list[dict[str, Any]]:
    """Findings as records for :func:`opsbook.report.findings` (group ``outage``)."""
    return [
        {
            "check": r.check,
            "severity": r.severity,
            "object": r.object,
            "group": "outage",
            "message": (
                f"#{r.rank} likely cause: {r.message}" if r.kind == "cause" else f"({r.kind}) {r.message}"
            ),
            "evidence": r.evidence,
            "data": {"rank": int(r.rank), "kind": r.kind, "score": float(r.score), "time": str(r.time)},
        }
        for r in findings.head(limit).itertuples()
    ]


def summary(findings: pd.DataFrame) -> dict[str, Any]:
    """What a scheduled run keeps: the number of likely causes and standing problems, and the top cause."""
    if findings.empty:
        return {"causes": 0, "standing": 0, "top": None}
    causes = findings[findings["kind"] == "cause"] if "kind" in findings else findings
    top = causes.iloc[0] if len(causes) else None
    return {
        "causes": len(causes),
        "standing": int((findings["kind"] == "standing").sum()) if "kind" in findings else 0,
        "top": None
        if top is None
        else {
            "check": top["check"],
            "object": top["object"],
            "severity": top["severity"],
            "time": str(top["time"]),
        },
    }
