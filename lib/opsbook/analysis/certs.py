"""Certificates that are about to expire: judged from the rows :mod:`opsbook.k8s.certs` reads (pure).

The team once lost push notifications to an expired certificate, so every PEM
certificate the cluster stores is checked, not only ``kubernetes.io/tls``
Secrets: any Secret or ConfigMap value containing ``-----BEGIN CERTIFICATE-----``
(:mod:`opsbook.k8s.certs` reads them, and the API server's own, keeping only
metadata). This module judges their expiry.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

EVALUATION_COLUMNS = ["object", "namespace", "severity", "message", "evidence"]


def expiry_evaluations(certs: pd.DataFrame, now: datetime, days: int, *,
                       urgent_days: int = 7) -> pd.DataFrame:
    """Judge each certificate's expiry.

    Severity: ``critical`` when already expired, ``high`` within ``urgent_days``, ``medium``
    within ``days``, else passed (empty severity).

    Args:
        certs: rows as in ``Snapshot.certs`` (``not_after`` a UTC timestamp).
        now: the reference time (UTC, timezone-aware).
        days: the warning threshold in days.
        urgent_days: the threshold for ``high``.

    Returns:
        One row per certificate: ``object, namespace, severity, message, evidence``.
    """
    if certs.empty:
        return pd.DataFrame(columns=EVALUATION_COLUMNS)
    left = (pd.to_datetime(certs["not_after"], utc=True) - pd.Timestamp(now)).dt.total_seconds() / 86400
    rows = []
    for (_, c), d in zip(certs.iterrows(), left, strict=True):
        what = f"certificate {c['subject'] or '(no subject)'} in {c['object']} key {c['key']!r}"
        if d < 0:
            sev, msg = "critical", f"{what} EXPIRED {-d:.1f} days ago ({c['not_after']:%Y-%m-%d %H:%M} UTC)"
        elif d <= urgent_days:
            sev, msg = "high", f"{what} expires in {d:.1f} days ({c['not_after']:%Y-%m-%d %H:%M} UTC)"
        elif d <= days:
            sev, msg = "medium", f"{what} expires in {d:.0f} days ({c['not_after']:%Y-%m-%d} UTC)"
        else:
            sev, msg = "", ""
        if sev:
            msg += ": renew it and update the object (cert-manager users: check the Certificate's events)."
        rows.append({"object": c["object"], "namespace": c["namespace"], "severity": sev, "message": msg,
                     "evidence": f"issuer {c['issuer']}, sha256 {c['fingerprint']}…"})
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)
