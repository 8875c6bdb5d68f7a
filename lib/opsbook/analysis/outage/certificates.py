"""``certificate.expiry``: a certificate that expired inside the window, long before it, or x509 errors."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import Config, _finding, _fmt

_X509 = (
    r"x509: certificate has expired|certificate has expired|certificate is not yet valid|expired certificate"
)


def detect_certificate_expiry(
    events: pd.DataFrame,
    evidence: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    config: Config = Config(),
) -> list[dict[str, Any]]:
    """Certificates that expired, split by when, and x509 expiry errors in the window.

    - expired inside the window or within ``cause_lead`` before it: a candidate cause (critical), scored
      by how close its expiry is to the window;
    - expired longer ago and still there: a *standing problem* (medium, ``standing=True``): it was already
      broken before this incident began, so it is listed, never ranked above an in-window cause;
    - expiring within ``cert_warning`` after the window's end: a warning (medium).
    """
    out = []
    certs = evidence[evidence["source"] == "certificate"] if len(evidence) else evidence
    for r in certs.itertuples():
        ns = str(r.object).split("/")[1]
        renew = (
            f"Renew it with its issuer and replace the secret (`kubectl -n {ns} create secret tls ... "
            "--dry-run=client -o yaml | kubectl apply -f -`), then restart the workloads that mount it."
            if str(r.object).startswith("secret/")
            else "Renew it (kops: `kops rolling-update cluster --force` after `kops update cluster`, "
            "or rotate the CA per the kops docs)."
        )
        if start - config.cause_lead <= r.time <= end:
            before = max(0.0, (start - r.time).total_seconds() / 60)
            out.append(
                _finding(
                    "certificate.expiry",
                    "critical",
                    r.time,
                    r.object,
                    f"{r.object} expired at {r.time:%Y-%m-%d %H:%M:%S}Z ({r.detail}), "
                    + ("inside the window. " if before == 0 else f"{before:.0f} min before the window. ")
                    + renew,
                    [r.evidence],
                    85 - min(20.0, before),
                    not_after=r.time,
                    standing=False,
                )
            )
        elif r.time < start:
            days = (start - r.time).total_seconds() / 86400
            out.append(
                _finding(
                    "certificate.expiry",
                    "medium",
                    r.time,
                    r.object,
                    f"Standing problem: {r.object} expired on {r.time:%Y-%m-%d} ({days:.0f} days before the "
                    f"window; {r.detail}) and is still there. It did not start this incident. " + renew,
                    [r.evidence],
                    10,
                    not_after=r.time,
                    standing=True,
                )
            )
        elif r.time <= end + config.cert_warning:
            out.append(
                _finding(
                    "certificate.expiry",
                    "medium",
                    r.time,
                    r.object,
                    f"{r.object} expires at {r.time:%Y-%m-%d}: not a cause yet, renew it soon.",
                    [r.evidence],
                    5,
                    not_after=r.time,
                    standing=True,
                )
            )
    if len(events):  # x509 errors are reported as Warning events (kubelet, controllers, webhooks)
        warn = events[(events["type"] == "Warning") & (events["time"] >= start) & (events["time"] <= end)]
        bad = warn[warn["message"].str.contains(_X509, case=False, regex=True, na=False)]
        if len(bad):
            out.append(
                _finding(
                    "certificate.expiry",
                    "critical",
                    bad["first_time"].min(),
                    ", ".join(bad["object"].unique()[:3]),
                    f"{int(bad['count'].sum())} x509 expiry error(s) from {_fmt(bad['first_time'].min())}"
                    f": {bad['message'].iloc[0][:160]}",
                    list(bad["event"].head(3)),
                    80,
                )
            )
    return out


# -- ASG / EC2 -------------------------------------------------------------------------------------
