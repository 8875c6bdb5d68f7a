"""Burstable CPU credits, throttling risk and right-sizing: pure functions.

Everything here takes DataFrames (the inventory from :mod:`opsbook.aws.ec2`, the
long metric frame from :mod:`opsbook.aws.cloudwatch`, a price table from
:mod:`opsbook.aws.pricing`) and returns DataFrames or finding records; nothing
calls AWS. The AWS formulas (EC2 user guide, burstable performance instances):

- 1 CPU credit = 1 vCPU at 100 % for 1 minute; an instance earns
  ``earn_per_hour`` credits and keeps at most ``max_balance`` (24 h of earnings);
- baseline % = ``earn_per_hour / vcpu / 60 * 100``;
- hours to exhaustion = ``balance / (12 * usage_per_5min - earn_per_hour)``;
- standard mode at a zero balance is throttled to the baseline (CPUUtilization
  flat at the baseline, steal time in the guest); unlimited mode spends surplus
  credits instead, charged at $0.05 per vCPU-hour (T4g $0.04) once they exceed
  24 h of earnings or the instance stops.

The credit table and the reference prices live once, in ``opsbook/data/*.csv``
with their source and date in the header comment, read by :mod:`opsbook.data`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from opsbook.data.tables import (
    BURSTABLE_ALTERNATIVES,
    FIXED_FAMILIES,
    CreditSpec,
    credit_spec,
    credit_table,
    credit_table_source,
    is_burstable,
    reference_prices,
    reference_prices_source,
)

__all__ = [  # the table loaders live in opsbook.data.tables; re-exported for notebooks and tests
    "BURSTABLE_ALTERNATIVES",
    "FIXED_FAMILIES",
    "CreditSpec",
    "credit_spec",
    "credit_table",
    "credit_table_source",
    "is_burstable",
    "reference_prices",
    "reference_prices_source",
]

HOURS_PER_MONTH = 730.0
THROTTLE_BALANCE = 1.0  # credits: "balance ≈ 0"
UNDER_PROVISIONED_FIXED_P95 = 90.0  # % CPU: a fixed-performance instance this busy needs more
EXHAUSTION_HIGH_H = 24.0
EXHAUSTION_MEDIUM_H = 72.0

SUMMARY_COLUMNS = [
    "instance_id",
    "instance_group",
    "instance_type",
    "credit_mode",
    "burstable",
    "vcpu",
    "baseline_pct",
    "earn_per_hour",
    "max_balance",
    "hours",
    "cpu_avg",
    "cpu_p95",
    "cpu_max",
    "cpu_recent",
    "balance_now",
    "usage_per_5min_recent",
    "net_burn_per_hour",
    "hours_to_exhaustion",
    "exhaustion_at",
    "throttled_hours",
    "throttled_now",
    "surplus_balance_now",
    "surplus_charged_credits",
    "surplus_charged_usd",
    "classification",
    "reason",
]


# -- formulas ---------------------------------------------------------------------------------------
def hours_to_exhaustion(balance: float, usage_per_5min: float, earn_per_hour: float) -> float:
    """Hours until the credit balance reaches zero at a steady burn rate.

    ``balance / (12 * usage_per_5min - earn_per_hour)``; ``inf`` when the instance
    earns at least what it spends.

    Args:
        balance: current CPUCreditBalance (credits).
        usage_per_5min: CPUCreditUsage per 5-minute period (credits).
        earn_per_hour: credits earned per hour (credit table).
    """
    net = 12 * usage_per_5min - earn_per_hour
    if net <= 0:
        return math.inf
    return max(balance, 0.0) / net


def credits_used_per_hour(cpu_pct: float, vcpu: int) -> float:
    """Credits an instance spends per hour at ``cpu_pct`` % of all its vCPUs."""
    return cpu_pct / 100 * vcpu * 60


def surplus_cost_usd(credits: float, usd_per_vcpu_hour: float = 0.05) -> float:
    """Charge for surplus credits: one credit is one vCPU-minute."""
    return credits / 60 * usd_per_vcpu_hour


def monthly_surplus_usd(
    util_pct: float,
    baseline_pct: float,
    vcpu: int,
    usd_per_vcpu_hour: float = 0.05,
    hours: float = HOURS_PER_MONTH,
) -> float:
    """Surplus charge per month of an unlimited instance running steadily at ``util_pct``."""
    return max(0.0, util_pct - baseline_pct) / 100 * vcpu * hours * usd_per_vcpu_hour


def break_even_pct(
    price_burstable: float,
    baseline_pct: float,
    vcpu: int,
    price_fixed: float,
    usd_per_vcpu_hour: float = 0.05,
) -> float:
    """Average CPU (% of the burstable's vCPUs) above which the fixed-performance type is cheaper.

    Solves ``price_b + (u - baseline) * vcpu * rate = price_f`` for ``u``.
    """
    return baseline_pct + (price_fixed - price_burstable) / (vcpu * usd_per_vcpu_hour) * 100


# -- analysis -----------------------------------------------------------------------------------------
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


# -- cost --------------------------------------------------------------------------------------------
OPTION_COLUMNS = [
    "instance_group",
    "option",
    "instance_type",
    "credit_mode",
    "count",
    "vcpu",
    "memory_gib",
    "usd_per_hour",
    "util_pct",
    "baseline_pct",
    "monthly_instances_usd",
    "monthly_surplus_usd",
    "monthly_total_usd",
    "throttles",
    "feasible",
    "break_even_pct",
    "is_current",
    "recommended",
]


def _size(itype: str) -> str:
    return itype.split(".", 1)[1] if "." in itype else ""


def cost_options(
    summary: pd.DataFrame, prices: pd.DataFrame, *, hours_per_month: float = HOURS_PER_MONTH
) -> pd.DataFrame:
    """Monthly cost per instance group now and for alternatives, at the observed average CPU.

    Alternatives: the same size in T3/T3a (unlimited) and the M5/M6i/C5 type with the
    same vCPU count and at least the current memory. Burstable options include the
    surplus charge a steady ``util_pct`` would cost (``monthly_surplus_usd``); a
    standard-mode option above its baseline ``throttles`` and is not ``feasible``. The
    current option's surplus is what CloudWatch says was charged, scaled to a month.
    ``break_even_pct`` (burstable options) is the average CPU, in % of that option's
    vCPUs, above which the cheapest fixed-performance alternative costs less. The
    ``recommended`` option is the cheapest feasible one.

    Args:
        summary: from :func:`credit_summary`.
        prices: ``instance_type, usd_per_hour, vcpu, memory_gib``
            (from :func:`opsbook.aws.pricing.on_demand_prices`).
        hours_per_month: 730 by AWS convention.

    Returns:
        Columns ``OPTION_COLUMNS``, one row per (instance group, option).
    """
    p = prices.drop_duplicates("instance_type").set_index("instance_type")
    rows: list[dict[str, Any]] = []
    for group, g in summary.groupby("instance_group", sort=True):
        itype = str(g["instance_type"].mode().iloc[0])
        count = len(g)
        if itype not in p.index:
            continue
        cur = p.loc[itype]
        cur_vcpu = int(cur["vcpu"])
        cur_mem = float(cur["memory_gib"])
        has_cpu = bool(g["cpu_avg"].notna().any())  # no data: price the current type, recommend nothing
        cpu_avg = float(g["cpu_avg"].mean()) if has_cpu else math.nan
        demand_vcpu = cpu_avg / 100 * cur_vcpu
        spec = credit_spec(itype)
        mode = str(g["credit_mode"].iloc[0]) if spec else ""
        hours = float(g["hours"].max()) or 1.0
        observed_surplus = float(g["surplus_charged_usd"].fillna(0).sum()) / hours * hours_per_month
        options: list[tuple[str, str, str]] = [("current", itype, mode)]
        for fam in BURSTABLE_ALTERNATIVES:
            alt = f"{fam}.{_size(itype)}"
            if alt != itype and alt in p.index and credit_spec(alt):
                options.append(("burstable", alt, "unlimited"))
        fixed = p[
            (p["vcpu"] == cur_vcpu)
            & (p["memory_gib"] >= cur_mem)
            & p.index.str.split(".").str[0].isin(FIXED_FAMILIES)
        ]
        options += [("fixed", str(t), "") for t in sorted(fixed.index) if t != itype]
        if not has_cpu:
            options = options[:1]
        cheapest_fixed = float(fixed["usd_per_hour"].min()) if not fixed.empty else math.nan
        for kind, t, m in options:
            pr = p.loc[t]
            vcpu = int(pr["vcpu"])
            util = demand_vcpu / vcpu * 100
            s = credit_spec(t)
            base = s.baseline_pct if s else math.nan
            if kind == "current":
                surplus = observed_surplus if m == "unlimited" else 0.0
            else:
                surplus = (
                    monthly_surplus_usd(util, base, vcpu, s.surplus_usd_per_vcpu_hour, hours_per_month)
                    * count
                    if s and m == "unlimited"
                    else 0.0
                )
            throttles = bool(
                s is not None
                and m == "standard"
                and (util > base or bool((g["throttled_hours"].fillna(0) > 0).any()))
            )
            inst_cost = float(pr["usd_per_hour"]) * hours_per_month * count
            rows.append(
                {
                    "instance_group": group,
                    "option": kind,
                    "instance_type": t,
                    "credit_mode": m,
                    "count": count,
                    "vcpu": vcpu,
                    "memory_gib": float(pr["memory_gib"]),
                    "usd_per_hour": float(pr["usd_per_hour"]),
                    "util_pct": util,
                    "baseline_pct": base,
                    "monthly_instances_usd": inst_cost,
                    "monthly_surplus_usd": surplus,
                    "monthly_total_usd": inst_cost + surplus,
                    "throttles": throttles,
                    "feasible": (not throttles and util <= UNDER_PROVISIONED_FIXED_P95) or not has_cpu,
                    "break_even_pct": break_even_pct(
                        float(pr["usd_per_hour"]), base, vcpu, cheapest_fixed, s.surplus_usd_per_vcpu_hour
                    )
                    if s and m == "unlimited" and cheapest_fixed == cheapest_fixed
                    else math.nan,
                    "is_current": kind == "current",
                    "recommended": False,
                }
            )
    out = pd.DataFrame(rows, columns=OPTION_COLUMNS)
    for _, g in out.groupby("instance_group"):
        ok = g[g["feasible"]]
        if not ok.empty:
            cur = ok[ok["is_current"]]
            best = ok["monthly_total_usd"].idxmin()
            # keep the current type unless an alternative saves at least a cent
            if not cur.empty and ok.loc[best, "monthly_total_usd"] >= cur["monthly_total_usd"].iloc[0] - 0.01:
                best = cur.index[0]
            out.loc[best, "recommended"] = True
    return out


GROUP_COLUMNS = [
    "instance_group",
    "instance_type",
    "credit_mode",
    "count",
    "cpu_avg",
    "monthly_now_usd",
    "recommended_type",
    "recommended_mode",
    "monthly_recommended_usd",
    "monthly_delta_usd",
    "break_even_pct",
    "current_throttles",
    "why",
]


def group_table(options: pd.DataFrame) -> pd.DataFrame:
    """One row per instance group: cost now, the recommended option, its cost and the difference.

    Returns:
        Columns ``GROUP_COLUMNS`` (``monthly_delta_usd`` < 0 is a saving; ``cpu_avg`` in % of the current
        type's vCPUs).
    """
    rows = []
    for group, g in options.groupby("instance_group", sort=True):
        cur = g[g["is_current"]].iloc[0]
        rec = g[g["recommended"]]
        r = rec.iloc[0] if not rec.empty else cur
        if cur["throttles"] and not rec.empty:
            why = (
                f"current {cur['instance_type']} ({cur['credit_mode']}) is held at its "
                f"{cur['baseline_pct']:.0f} % baseline (throttled, or averaging above it); "
                f"{r['instance_type']} {r['credit_mode'] or 'fixed'} is the cheapest option that is not"
            )
        elif cur["util_pct"] != cur["util_pct"]:
            why = "no CPU data in the window: no recommendation"
        elif bool(r["is_current"]):
            why = "current type is the cheapest option that fits"
        else:
            why = (
                f"{r['instance_type']} {r['credit_mode'] or 'fixed'} fits {cur['util_pct']:.0f} % CPU "
                "for less"
            )
        rows.append(
            {
                "instance_group": group,
                "instance_type": cur["instance_type"],
                "credit_mode": cur["credit_mode"],
                "count": int(cur["count"]),
                "cpu_avg": cur["util_pct"],
                "monthly_now_usd": cur["monthly_total_usd"],
                "recommended_type": r["instance_type"],
                "recommended_mode": r["credit_mode"],
                "monthly_recommended_usd": r["monthly_total_usd"],
                "monthly_delta_usd": r["monthly_total_usd"] - cur["monthly_total_usd"],
                "break_even_pct": r["break_even_pct"],
                "current_throttles": bool(cur["throttles"]),
                "why": why,
            }
        )
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def cost_findings(groups: pd.DataFrame) -> list[dict[str, Any]]:
    """Findings from :func:`group_table`: what ending throttling costs (medium), or a cheaper fit."""
    out: list[dict[str, Any]] = []
    for r in groups.itertuples():
        if r.recommended_type == r.instance_type and r.recommended_mode == r.credit_mode:
            continue
        be = f"; break-even {r.break_even_pct:.0f} % CPU" if r.break_even_pct == r.break_even_pct else ""
        target = f"{r.recommended_type}{' ' + r.recommended_mode if r.recommended_mode else ''}"
        if r.current_throttles:
            delta = (
                f"saves ${-r.monthly_delta_usd:.2f}"
                if r.monthly_delta_usd < 0
                else f"+${r.monthly_delta_usd:.2f}"
            )
            out.append(
                {
                    "check": "cost.fix_throttling",
                    "severity": "medium",
                    "object": f"ig/{r.instance_group}",
                    "group": "cost",
                    "message": (
                        f"{r.instance_group}: {r.why}: ${r.monthly_recommended_usd:.2f}/month "
                        f"instead of ${r.monthly_now_usd:.2f} ({delta}/month{be})."
                    ),
                    "evidence": "cost table",
                    "data": {"delta_usd_month": r.monthly_delta_usd},
                }
            )
        elif r.monthly_delta_usd < 0:
            out.append(
                {
                    "check": "cost.cheaper_alternative",
                    "severity": "medium" if -r.monthly_delta_usd >= 50 else "low",
                    "object": f"ig/{r.instance_group}",
                    "group": "cost",
                    "message": (
                        f"{r.instance_group}: {r.count} × {r.instance_type} cost "
                        f"${r.monthly_now_usd:.2f}/month; {target} would cost "
                        f"${r.monthly_recommended_usd:.2f} (saves ${-r.monthly_delta_usd:.2f}/month "
                        f"at {r.cpu_avg:.1f} % CPU{be})."
                    ),
                    "evidence": "cost table",
                    "data": {"saving_usd_month": -r.monthly_delta_usd},
                }
            )
    return out


def review_record(
    summary: pd.DataFrame, groups: pd.DataFrame, api_calls: dict[str, int] | None = None
) -> dict[str, Any]:
    """The numbers a scheduled run keeps: counts by state, surplus spent, monthly cost now and recommended."""
    hte = summary["hours_to_exhaustion"].astype(float)
    standard = summary["credit_mode"] == "standard"
    return {
        "instances": len(summary),
        "burstable": int(summary["burstable"].sum()),
        "throttled_now": int(summary["throttled_now"].fillna(False).astype(bool).sum()),
        "exhausting_within_24h": int((standard & (hte <= EXHAUSTION_HIGH_H)).sum()),
        "over_provisioned": int((summary["classification"] == "over-provisioned").sum()),
        "under_provisioned": int((summary["classification"] == "under-provisioned").sum()),
        "surplus_charged_usd": round(float(summary["surplus_charged_usd"].fillna(0).sum()), 2),
        "monthly_now_usd": round(float(groups["monthly_now_usd"].sum()), 2),
        "monthly_recommended_usd": round(float(groups["monthly_recommended_usd"].sum()), 2),
        "api_calls": dict(api_calls or {}),
    }
