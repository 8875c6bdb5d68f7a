"""Cost options per instance, the per-group table, cost findings and the record a scheduled run keeps."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from opsbook.analysis.credits.formulas import (
    EXHAUSTION_HIGH_H,
    HOURS_PER_MONTH,
    UNDER_PROVISIONED_FIXED_P95,
    break_even_pct,
    monthly_surplus_usd,
)
from opsbook.data.tables import (
    BURSTABLE_ALTERNATIVES,
    FIXED_FAMILIES,
    credit_spec,
)
from opsbook.report import object_id

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
                    "object": object_id("ig", r.instance_group),
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
                    "object": object_id("ig", r.instance_group),
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
