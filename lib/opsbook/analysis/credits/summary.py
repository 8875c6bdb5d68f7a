"""Per-instance credit summary (throttling, exhaustion, right-sizing class) and its findings."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from opsbook.analysis.credits.formulas import (
    EXHAUSTION_HIGH_H,
    EXHAUSTION_MEDIUM_H,
    HOURS_PER_MONTH,
    SUMMARY_COLUMNS,
    THROTTLE_BALANCE,
    UNDER_PROVISIONED_FIXED_P95,
    hours_to_exhaustion,
    surplus_cost_usd,
)
from opsbook.data.tables import (
    BURSTABLE_ALTERNATIVES,
    CreditSpec,
    credit_spec,
    credit_table,
    reference_prices,
)


def wide(metrics: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long metric frame to one row per (instance_id, timestamp), one column per metric."""
    if metrics.empty:
        return pd.DataFrame(columns=["instance_id", "timestamp"])
    out = metrics.pivot_table(
        index=["instance_id", "timestamp"], columns="metric", values="value", aggfunc="last"
    )
    out.columns.name = None
    return out.reset_index().sort_values(["instance_id", "timestamp"])


def throttled_periods(
    metrics: pd.DataFrame,
    inventory: pd.DataFrame,
    *,
    balance_eps: float = THROTTLE_BALANCE,
    tolerance_pct: float = 2.0,
) -> pd.DataFrame:
    """Periods in which a standard-mode burstable instance was throttled.

    The signature: CPUCreditBalance ≤ ``balance_eps`` and CPUUtilization within
    ``tolerance_pct`` points (or 10 % of the baseline, if larger) of the baseline.

    Returns:
        Columns ``instance_id, timestamp, balance, cpu, baseline_pct``.
    """
    cols = ["instance_id", "timestamp", "balance", "cpu", "baseline_pct"]
    w = wide(metrics)
    if w.empty or "CPUCreditBalance" not in w or "CPUUtilization" not in w:
        return pd.DataFrame(columns=cols)
    rows = []
    for inst in inventory.itertuples():
        spec = credit_spec(str(inst.instance_type))
        if spec is None or str(getattr(inst, "credit_mode", "standard")) != "standard":
            continue
        tol = max(tolerance_pct, 0.1 * spec.baseline_pct)
        m = w[w["instance_id"] == inst.instance_id]
        hit = m[
            (m["CPUCreditBalance"] <= balance_eps) & ((m["CPUUtilization"] - spec.baseline_pct).abs() <= tol)
        ]
        for r in hit.itertuples():
            rows.append(
                (inst.instance_id, r.timestamp, r.CPUCreditBalance, r.CPUUtilization, spec.baseline_pct)
            )
    return pd.DataFrame(rows, columns=cols)


def _last(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.iloc[-1]) if len(s) else math.nan


def _fixed_over_threshold(vcpu: int) -> float:
    """Highest baseline of an x86 burstable with ``vcpu`` vCPUs: below it, a burstable never needs credits."""
    df = credit_table()
    same = df[(df["vcpu"] == vcpu) & df["family"].isin((*BURSTABLE_ALTERNATIVES, "t2"))]
    return float(same["baseline_pct"].max()) if not same.empty else 20.0


def credit_summary(
    metrics: pd.DataFrame,
    inventory: pd.DataFrame,
    *,
    period_s: int = 3600,
    recent_hours: float = 3.0,
    vcpus: dict[str, int] | None = None,
) -> pd.DataFrame:
    """One row per instance: credit state, burn rate, exhaustion forecast, throttling, surplus, sizing.

    Args:
        metrics: long frame ``timestamp, instance_id, metric, value`` (CloudWatch statistics per period:
            CPUUtilization Average, CPUCreditUsage Sum, CPUCreditBalance Minimum,
            CPUSurplusCreditBalance Maximum, CPUSurplusCreditsCharged Sum).
        inventory: ``instance_id, instance_group, instance_type, credit_mode``
            (from :func:`opsbook.aws.ec2.inventory`).
        period_s: the statistics period of ``metrics`` in seconds.
        recent_hours: how far back the "recent" burn rate looks.
        vcpus: vCPU count of non-burstable types (default: the reference price table's specs).

    Returns:
        Columns ``SUMMARY_COLUMNS``: ``cpu_*`` in % of all vCPUs (hourly-average peak for ``cpu_max``),
        ``hours_to_exhaustion`` (inf = not burning), ``classification`` one of ``under-provisioned,
        over-provisioned, optimized, insufficient-data, not-burstable`` and a ``reason`` in
        Compute-Optimizer-like words.
    """
    w = wide(metrics)
    throttled = throttled_periods(metrics, inventory)
    ref = reference_prices()
    vcpus = {**dict(zip(ref["instance_type"], ref["vcpu"].astype(int), strict=True)), **(vcpus or {})}
    periods_per_5min = period_s / 300
    rows: list[dict[str, Any]] = []
    for inst in inventory.itertuples():
        itype = str(inst.instance_type)
        spec = credit_spec(itype)
        mode = str(getattr(inst, "credit_mode", "") or (spec.default_mode if spec else ""))
        m = w[w["instance_id"] == inst.instance_id] if not w.empty else w
        row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, math.nan)
        row.update(
            instance_id=inst.instance_id,
            instance_group=getattr(inst, "instance_group", ""),
            instance_type=itype,
            credit_mode=mode if spec else "",
            burstable=spec is not None,
            vcpu=spec.vcpu if spec else vcpus.get(itype, math.nan),
            baseline_pct=spec.baseline_pct if spec else math.nan,
            earn_per_hour=spec.earn_per_hour if spec else math.nan,
            max_balance=spec.max_balance if spec else math.nan,
            hours=len(m) * period_s / 3600,
            throttled_hours=0.0,
            throttled_now=False,
            surplus_charged_credits=0.0,
            surplus_charged_usd=0.0,
            exhaustion_at=pd.NaT,
        )
        cpu = m["CPUUtilization"].dropna() if "CPUUtilization" in m else pd.Series(dtype=float)
        if cpu.empty:
            row.update(
                classification="insufficient-data",
                reason="No CPUUtilization datapoints in the window (new instance, or detailed data missing).",
            )
            rows.append(row)
            continue
        last_ts = m["timestamp"].max()
        recent = m[m["timestamp"] > last_ts - pd.Timedelta(hours=recent_hours)]
        row.update(
            cpu_avg=float(cpu.mean()),
            cpu_p95=float(cpu.quantile(0.95)),
            cpu_max=float(cpu.max()),
            cpu_recent=float(recent["CPUUtilization"].mean()),
        )
        if spec is not None:
            _burstable_row(row, m, recent, spec, mode, periods_per_5min, throttled, period_s, last_ts)
        else:
            _fixed_row(row, itype)
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _burstable_row(
    row: dict[str, Any],
    m: pd.DataFrame,
    recent: pd.DataFrame,
    spec: CreditSpec,
    mode: str,
    periods_per_5min: float,
    throttled: pd.DataFrame,
    period_s: int,
    last_ts: Any,
) -> None:
    balance = _last(m["CPUCreditBalance"]) if "CPUCreditBalance" in m else math.nan
    usage = recent["CPUCreditUsage"].dropna() if "CPUCreditUsage" in recent else pd.Series(dtype=float)
    usage_5 = float(usage.sum()) / (len(usage) * periods_per_5min) if len(usage) else math.nan
    hte = (
        hours_to_exhaustion(balance, usage_5, spec.earn_per_hour)
        if not (math.isnan(balance) or math.isnan(usage_5))
        else math.nan
    )
    t = throttled[throttled["instance_id"] == row["instance_id"]]
    charged = float(m["CPUSurplusCreditsCharged"].fillna(0).sum()) if "CPUSurplusCreditsCharged" in m else 0.0
    row.update(
        balance_now=balance,
        usage_per_5min_recent=usage_5,
        net_burn_per_hour=12 * usage_5 - spec.earn_per_hour if not math.isnan(usage_5) else math.nan,
        hours_to_exhaustion=hte,
        exhaustion_at=(last_ts + pd.Timedelta(hours=hte)) if hte == hte and math.isfinite(hte) else pd.NaT,
        throttled_hours=len(t) * period_s / 3600,
        throttled_now=bool(len(t) and t["timestamp"].max() == last_ts),
        surplus_balance_now=_last(m["CPUSurplusCreditBalance"]) if "CPUSurplusCreditBalance" in m else 0.0,
        surplus_charged_credits=charged,
        surplus_charged_usd=surplus_cost_usd(charged, spec.surplus_usd_per_vcpu_hour),
    )
    base = spec.baseline_pct
    if row["throttled_hours"] > 0:
        row.update(
            classification="under-provisioned",
            reason=(
                f"Under-provisioned: throttled to its {base:.0f} % baseline for "
                f"{row['throttled_hours']:.0f} h (credit balance ≈ 0); real demand is above what "
                "the instance may use."
            ),
        )
    elif row["cpu_avg"] > base:
        row.update(
            classification="under-provisioned",
            reason=(
                f"Under-provisioned: CPU averages {row['cpu_avg']:.1f} % against a {base:.0f} % "
                f"baseline, so it lives on credits ({mode} mode)."
            ),
        )
    elif row["cpu_max"] <= base:
        row.update(
            classification="over-provisioned",
            reason=(
                f"Over-provisioned: CPU never bursts (hourly peak {row['cpu_max']:.1f} % ≤ "
                f"{base:.0f} % baseline); credits pile up unused."
            ),
        )
    else:
        row.update(
            classification="optimized",
            reason=(
                f"Optimized: CPU averages {row['cpu_avg']:.1f} % under the {base:.0f} % baseline "
                f"and bursts to {row['cpu_max']:.1f} % on credits."
            ),
        )


def _fixed_row(row: dict[str, Any], itype: str) -> None:
    vcpu = row["vcpu"]
    threshold = _fixed_over_threshold(int(vcpu)) if vcpu == vcpu else 20.0
    if row["cpu_p95"] >= UNDER_PROVISIONED_FIXED_P95:
        row.update(
            classification="under-provisioned",
            reason=f"Under-provisioned: CPU p95 {row['cpu_p95']:.1f} % (hourly) leaves no headroom.",
        )
    elif row["cpu_max"] <= threshold:
        row.update(
            classification="over-provisioned",
            reason=(
                f"Over-provisioned: CPU peaked at {row['cpu_max']:.1f} % (hourly average); a burstable "
                f"type with a {threshold:.0f} % baseline would never need credits."
            ),
        )
    else:
        row.update(
            classification="optimized",
            reason=f"Optimized: {itype} is used at {row['cpu_avg']:.1f} % on average, "
            f"{row['cpu_max']:.1f} % at peak.",
        )


def credit_findings(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """Findings (records for :func:`opsbook.report.findings`) from :func:`credit_summary`.

    Severity: throttled now = high; standard-mode exhaustion within 24 h = high,
    within 72 h = medium; throttled earlier in the window = medium; surplus
    charged = low (medium above $10/month); under-provisioned = medium;
    over-provisioned = low.
    """
    out: list[dict[str, Any]] = []

    def add(check: str, severity: str, r: Any, message: str, **data: Any) -> None:
        out.append(
            {
                "check": check,
                "severity": severity,
                "message": message,
                "object": r.instance_id,
                "group": "credits",
                "evidence": f"CloudWatch AWS/EC2 {{InstanceId={r.instance_id}}}",
                "data": {"instance_group": r.instance_group, "instance_type": r.instance_type, **data},
            }
        )

    for r in summary.itertuples():
        who = f"{r.instance_type} in {r.instance_group}"
        if r.burstable and r.throttled_now:
            add(
                "credits.throttled",
                "high",
                r,
                f"{who} is throttled now: credit balance {r.balance_now:.1f} and CPU flat at "
                f"{r.cpu_recent:.1f} % "
                f"(baseline {r.baseline_pct:.0f} %) for {r.throttled_hours:.0f} h in the window; its pods "
                "see "
                "steal time. Set `spec.cpuCredits: unlimited` on the instance group (`kops edit ig "
                f"{r.instance_group}`) or move it to a non-burstable type (see the cost table).",
                throttled_hours=r.throttled_hours,
            )
        elif r.burstable and r.throttled_hours > 0:
            add(
                "credits.throttled_recently",
                "medium",
                r,
                f"{who} was throttled to its {r.baseline_pct:.0f} % baseline for {r.throttled_hours:.0f} h "
                "in the "
                "window (balance ≈ 0, CPU flat at baseline).",
                throttled_hours=r.throttled_hours,
            )
        hte = r.hours_to_exhaustion
        standard = r.credit_mode == "standard"
        on_surplus = not standard and r.balance_now <= THROTTLE_BALANCE  # the surplus finding says it
        if r.burstable and not r.throttled_now and not on_surplus and hte == hte and math.isfinite(hte):
            then = (
                f"then it is throttled to {r.baseline_pct:.0f} %"
                if standard
                else "then it runs on surplus credits, charged once they exceed 24 h of earnings"
            )
            sev = (
                ("high" if hte <= EXHAUSTION_HIGH_H else "medium" if hte <= EXHAUSTION_MEDIUM_H else "low")
                if standard
                else ("low" if hte <= EXHAUSTION_MEDIUM_H else "info")
            )
            add(
                "credits.exhaustion",
                sev,
                r,
                f"{who} runs out of CPU credits in {hte:.1f} h at the recent burn rate "
                f"({12 * r.usage_per_5min_recent:.0f} credits/h used vs {r.earn_per_hour:.0f} earned, "
                "balance "
                f"{r.balance_now:.0f}); {then}.",
                hours_to_exhaustion=hte,
            )
        if r.burstable and r.surplus_charged_credits > 0:
            monthly = r.surplus_charged_usd / r.hours * HOURS_PER_MONTH if r.hours else 0.0
            add(
                "credits.surplus_charged",
                "medium" if monthly > 10 else "low",
                r,
                f"{who} was charged for {r.surplus_charged_credits:.0f} surplus credits "
                f"(${r.surplus_charged_usd:.2f}) "
                f"in {r.hours:.0f} h: about ${monthly:.2f}/month on top of the instance price.",
                surplus_usd=r.surplus_charged_usd,
                surplus_usd_month=monthly,
            )
        if r.classification == "insufficient-data":
            add(
                "credits.no_data",
                "info",
                r,
                f"{who}: no CPUUtilization in the window, nothing to judge. Check the window (`end`, "
                "`window_days`), that the instance ran then, and `cloudwatch:GetMetricData` permission.",
            )
        if r.classification == "under-provisioned" and not (r.burstable and r.throttled_hours > 0):
            add("rightsizing.under_provisioned", "medium", r, f"{who}: {r.reason}")
        elif r.classification == "over-provisioned":
            add("rightsizing.over_provisioned", "low", r, f"{who}: {r.reason}")
    return out
