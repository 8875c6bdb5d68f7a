"""``cpu.credits``: CPUCreditBalance ≈ 0 with CPUUtilization flat at a baseline, before a backlog grows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import Config, _finding, _fmt
from opsbook.analysis.outage.metrics import MetricsCache, credit_exhaustion, growth
from opsbook.report import object_id


def detect_cpu_credits(
    metrics: pd.DataFrame,
    instances: pd.DataFrame | None = None,
    config: Config = Config(),
    milestones: pd.DataFrame | None = None,
    cache: MetricsCache | None = None,
) -> list[dict[str, Any]]:
    """CPU credit exhaustion (balance ≈ 0, CPU flat at baseline), and the backlog growth that follows."""
    if metrics.empty:
        return []
    ex = credit_exhaustion(metrics, cache=cache)
    if ex.empty:
        return []
    grown = growth(metrics, cache)
    names: dict[str, str] = {}
    if instances is not None and len(instances):
        names = {r.instance_id: f"{r.instance_type} {r.private_dns}".strip() for r in instances.itertuples()}
    out = []
    for r in ex.itertuples():
        after = grown[
            (grown["onset"] >= r.zero_at) & (grown["onset"] <= r.zero_at + config.credit_backlog_horizon)
        ]
        # also a growth that began a little before the zero point but after the balance started falling
        follows = ""
        if len(after):
            g = after.sort_values("onset").iloc[0]
            lag = (g["onset"] - r.zero_at).total_seconds() / 60
            follows = (
                f" It precedes the growth of {g['metric']} ({g['id']}) at {_fmt(g['onset'])} by {lag:.0f} min"
                f" (from {g['base']:g} to {g['peak']:g})."
            )
        flat = (
            f" CPUUtilization stayed flat at {r.cpu_level:.0f}% (p10-p90 {r.cpu_p10:.1f}-{r.cpu_p90:.1f}) "
            "while the balance was zero: the instance was throttled to its baseline."
            if r.cpu_flat
            else " CPUUtilization was not flat (unlimited mode, or not CPU bound)."
        )
        msg = (
            f"CPU credits of {r.id} {names.get(r.id, '')} exhausted at {_fmt(r.zero_at)} (balance "
            f"{r.balance_max:.0f} → {r.balance_min:.1f}).{flat}{follows} Switch the instance group to "
            "`cpuCredits: unlimited`, move to a non-burstable type, or spread the load."
        ).replace("  ", " ")
        score = 50 + (15 if r.cpu_flat else 0) + (20 if follows else 0)
        out.append(
            _finding(
                "cpu.credits",
                "high" if r.cpu_flat else "medium",
                r.zero_at,
                object_id("Instance", r.id),
                msg,
                [
                    f"CloudWatch AWS/EC2 CPUCreditBalance InstanceId={r.id}",
                    f"CloudWatch AWS/EC2 CPUUtilization InstanceId={r.id}",
                ]
                + [f"CloudWatch {g.namespace} {g.metric} ({g.id})" for g in after.itertuples()],
                score,
                zero_at=r.zero_at,
                cpu_level=r.cpu_level,
                cpu_flat=bool(r.cpu_flat),
                backlog_onset=after["onset"].min() if len(after) else None,
            )
        )
    return out


# -- rollouts ----------------------------------------------------------------------------------------
