"""Pure-function tests of the credit / cost analysis, with answers computed by hand from the AWS formulas.

Hand formulas (EC2 user guide): credits used per hour = CPU% × vCPU × 60; baseline % = earn/h / vCPU / 60;
hours to exhaustion = balance / (12 × usage per 5 min − earn per hour); surplus charge = credits / 60 × $0.05.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from opsbook.analysis import credits as c
from opsbook.aws import cloudwatch, pricing

DATA = Path(__file__).parent / "data"
END = datetime(2026, 11, 20, 12, tzinfo=UTC)
HOURS = 336  # 14 days of hourly points


def series(instance_id: str, metric: str, values: list[float]) -> pd.DataFrame:
    """Hourly points ending one hour before END (the last full hour of the window)."""
    ts = [END - timedelta(hours=len(values) - i) for i in range(len(values))]
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(ts, utc=True),
            "instance_id": instance_id,
            "metric": metric,
            "value": values,
        }
    )


def frame(*parts: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True)


# -- the four scenarios ---------------------------------------------------------------------------------
def scenario_bursting() -> pd.DataFrame:
    """t2.medium: 330 h at 10 % (12 credits/h < 24 earned, balance full at 576), then 6 h at 60 %.

    60 % × 2 vCPU × 60 = 72 credits/h used, 24 earned: net -48/h, so 576 → 528 ... 288 after 6 h.
    """
    cpu = [10.0] * 330 + [60.0] * 6
    usage = [12.0] * 330 + [72.0] * 6
    balance = [576.0] * 330 + [576.0 - 48 * (i + 1) for i in range(6)]
    return frame(
        series("i-burst", "CPUUtilization", cpu),
        series("i-burst", "CPUCreditUsage", usage),
        series("i-burst", "CPUCreditBalance", balance),
    )


def scenario_throttled() -> pd.DataFrame:
    """t2.medium: 326 h at 10 % with a full balance, then 10 h throttled: balance 0, CPU flat at 20 %."""
    cpu = [10.0] * 326 + [20.0] * 10
    usage = [12.0] * 326 + [24.0] * 10
    balance = [576.0] * 326 + [0.0] * 10
    return frame(
        series("i-thr", "CPUUtilization", cpu),
        series("i-thr", "CPUCreditUsage", usage),
        series("i-thr", "CPUCreditBalance", balance),
    )


def scenario_surplus() -> pd.DataFrame:
    """t3.medium unlimited: 264 h at 10 %, then 72 h at 40 % (48 credits/h used, 24 earned).

    Hours 1-24 drain the 576 balance (-24/h); hours 25-48 build surplus +24/h to 576 (= 24 h of
    earnings, the free limit); hours 49-72 the excess is charged: 24 credits/h × 24 h = 576 credits
    = 9.6 vCPU-hours × $0.05 = $0.48.
    """
    cpu = [10.0] * 264 + [40.0] * 72
    usage = [12.0] * 264 + [48.0] * 72
    balance = [576.0] * 264 + [576.0 - 24 * (i + 1) for i in range(24)] + [0.0] * 48
    surplus = [0.0] * 288 + [24.0 * (i + 1) for i in range(24)] + [576.0] * 24
    charged = [0.0] * 312 + [24.0] * 24
    return frame(
        series("i-t3", "CPUUtilization", cpu),
        series("i-t3", "CPUCreditUsage", usage),
        series("i-t3", "CPUCreditBalance", balance),
        series("i-t3", "CPUSurplusCreditBalance", surplus),
        series("i-t3", "CPUSurplusCreditsCharged", charged),
    )


def scenario_idle() -> pd.DataFrame:
    """m5.large at 2 % CPU (no credit metrics: not burstable)."""
    return series("i-m5", "CPUUtilization", [2.0] * HOURS)


INVENTORY = pd.DataFrame(
    [
        {
            "instance_id": "i-burst",
            "instance_group": "nodes-a",
            "instance_type": "t2.medium",
            "credit_mode": "standard",
        },
        {
            "instance_id": "i-thr",
            "instance_group": "nodes-b",
            "instance_type": "t2.medium",
            "credit_mode": "standard",
        },
        {
            "instance_id": "i-t3",
            "instance_group": "nodes-burst",
            "instance_type": "t3.medium",
            "credit_mode": "unlimited",
        },
        {
            "instance_id": "i-m5",
            "instance_group": "nodes-idle",
            "instance_type": "m5.large",
            "credit_mode": "",
        },
    ]
)


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return frame(scenario_bursting(), scenario_throttled(), scenario_surplus(), scenario_idle())


@pytest.fixture(scope="module")
def summary(metrics: pd.DataFrame) -> pd.DataFrame:
    return c.credit_summary(metrics, INVENTORY).set_index("instance_id")


# -- data files ---------------------------------------------------------------------------------------------
def test_credit_table_matches_design_and_has_source() -> None:
    t = c.credit_table().set_index("instance_type")
    assert t.loc["t2.medium", ["vcpu", "earn_per_hour", "max_balance", "launch_credits"]].tolist() == [
        2,
        24,
        576,
        60,
    ]
    assert t.loc["t2.2xlarge", "earn_per_hour"] == pytest.approx(81.6)
    assert t.loc["t3.xlarge", "max_balance"] == 2304
    assert t.loc["t4g.large", "surplus_usd_per_vcpu_hour"] == 0.04
    # cap = 24 h of earnings for every row
    assert (t["max_balance"] - 24 * t["earn_per_hour"]).abs().max() < 1e-9
    # baseline % = earn / vCPU / 60: t2.medium 20 %, t3.large 30 %, t3.xlarge 40 %, t2.nano 5 %
    assert t.loc[["t2.medium", "t3.large", "t3.xlarge", "t2.nano"], "baseline_pct"].round(6).tolist() == [
        20,
        30,
        40,
        5,
    ]
    src = c.credit_table_source()
    assert "docs.aws.amazon.com" in src["source"] and src["as_of"].startswith("2026-")


def test_reference_prices_match_design_and_say_region() -> None:
    p = c.reference_prices().set_index("instance_type")
    design = {
        "t2.medium": 0.0464,
        "t3.medium": 0.0416,
        "t3a.medium": 0.0376,
        "m5.large": 0.096,
        "m6i.large": 0.096,
        "c5.large": 0.085,
    }
    for t, usd in design.items():
        assert p.loc[t, "usd_per_hour"] == usd
    assert set(p["region"]) == {"us-east-1"}
    meta = c.reference_prices_source()
    assert meta["region"].startswith("us-east-1 ONLY") and "eu-central-1" in meta["region"]
    assert meta["as_of"].startswith("2026-")


# -- formulas ---------------------------------------------------------------------------------------------
def test_hours_to_exhaustion_formula() -> None:
    # full t2.medium at 60 %: 576 / (12 × 6 − 24) = 576 / 48 = 12 h
    assert c.hours_to_exhaustion(576, 6, 24) == 12.0
    assert c.credits_used_per_hour(60, 2) == 72.0
    # earning at least what it spends never runs out
    assert c.hours_to_exhaustion(100, 2, 24) == math.inf
    assert c.hours_to_exhaustion(100, 1, 24) == math.inf


def test_surplus_and_break_even_formulas() -> None:
    assert c.surplus_cost_usd(576) == pytest.approx(0.48)
    assert c.surplus_cost_usd(60, 0.04) == pytest.approx(0.04)
    # t3.medium at a steady 40 %: (40 - 20) % × 2 vCPU × 730 h × $0.05 = $14.60
    assert c.monthly_surplus_usd(40, 20, 2) == pytest.approx(14.60)
    # t3.large vs m5.large: 30 + (0.096 - 0.0832) / (2 × 0.05) × 100 = 42.8 %
    assert c.break_even_pct(0.0832, 30, 2, 0.096) == pytest.approx(42.8)


# -- scenarios --------------------------------------------------------------------------------------------
def test_t2_medium_bursting_at_60_percent_exhausts_in_6_hours(summary: pd.DataFrame) -> None:
    r = summary.loc["i-burst"]
    assert r["balance_now"] == 288.0
    assert r["usage_per_5min_recent"] == pytest.approx(6.0)  # 72 credits/h over the last 3 h
    assert r["net_burn_per_hour"] == pytest.approx(48.0)
    assert r["hours_to_exhaustion"] == pytest.approx(6.0)  # 288 / (12 × 6 − 24)
    assert r["exhaustion_at"] == pd.Timestamp(END - timedelta(hours=1) + timedelta(hours=6))
    assert r["throttled_hours"] == 0 and not r["throttled_now"]
    found = [f for f in c.credit_findings(summary.reset_index()) if f["object"] == "i-burst"]
    ex = [f for f in found if f["check"] == "credits.exhaustion"]
    assert len(ex) == 1 and ex[0]["severity"] == "high" and "6.0 h" in ex[0]["message"]


def test_t2_throttled_at_baseline_is_detected(metrics: pd.DataFrame, summary: pd.DataFrame) -> None:
    t = c.throttled_periods(metrics, INVENTORY)
    assert set(t["instance_id"]) == {"i-thr"}  # the bursting one has balance > 0; t3 is unlimited
    assert len(t) == 10 and (t["cpu"] == 20.0).all()
    r = summary.loc["i-thr"]
    assert r["throttled_hours"] == 10.0 and r["throttled_now"]
    assert r["classification"] == "under-provisioned"
    f = [f for f in c.credit_findings(summary.reset_index()) if f["object"] == "i-thr"]
    assert [x["check"] for x in f] == ["credits.throttled"] and f[0]["severity"] == "high"
    assert "cpuCredits: unlimited" in f[0]["message"]


def test_throttling_needs_cpu_at_baseline_not_just_zero_balance() -> None:
    # balance 0 but CPU at 45 % cannot be a standard instance held at its 20 % baseline
    m = frame(series("i-x", "CPUUtilization", [45.0] * 3), series("i-x", "CPUCreditBalance", [0.0] * 3))
    inv = pd.DataFrame([{"instance_id": "i-x", "instance_type": "t2.medium", "credit_mode": "standard"}])
    assert c.throttled_periods(m, inv).empty


def test_t3_unlimited_accruing_surplus_is_charged(summary: pd.DataFrame) -> None:
    r = summary.loc["i-t3"]
    assert r["surplus_charged_credits"] == 576.0
    assert r["surplus_charged_usd"] == pytest.approx(0.48)
    assert r["surplus_balance_now"] == 576.0
    assert r["throttled_hours"] == 0  # unlimited never throttles
    f = {x["check"]: x for x in c.credit_findings(summary.reset_index()) if x["object"] == "i-t3"}
    assert "credits.exhaustion" not in f  # already on surplus: the surplus finding says it
    s = f["credits.surplus_charged"]
    # $0.48 in 336 h → 0.48 / 336 × 730 = $1.04 a month
    assert s["data"]["surplus_usd_month"] == pytest.approx(0.48 / 336 * 730)
    assert "$0.48" in s["message"]


def test_idle_m5_large_is_over_provisioned_with_cheaper_alternative(summary: pd.DataFrame) -> None:
    r = summary.loc["i-m5"]
    assert r["classification"] == "over-provisioned" and not r["burstable"]
    assert "30 % baseline" in r["reason"]  # t3.large / t2.large: the highest 2-vCPU baseline
    opts = c.cost_options(summary.reset_index(), c.reference_prices())
    g = opts[opts["instance_group"] == "nodes-idle"].set_index("instance_type")
    assert set(g.index) == {"m5.large", "t3.large", "t3a.large", "m6i.large"}  # c5.large: 4 GiB < 8 GiB
    assert g.loc["m5.large", "monthly_total_usd"] == pytest.approx(0.096 * 730)  # $70.08
    assert g.loc["t3a.large", "monthly_total_usd"] == pytest.approx(
        0.0752 * 730
    )  # $54.90, 2 % < 30 % baseline
    assert g.loc["t3a.large", "monthly_surplus_usd"] == 0
    assert g.loc["t3a.large", "recommended"]
    # break-even: 30 + (0.096 - 0.0752) / (2 × 0.05) × 100 = 50.8 %
    assert g.loc["t3a.large", "break_even_pct"] == pytest.approx(50.8)
    groups = c.group_table(opts).set_index("instance_group")
    assert groups.loc["nodes-idle", "monthly_delta_usd"] == pytest.approx((0.0752 - 0.096) * 730)  # -15.18
    f = [x for x in c.cost_findings(groups.reset_index()) if x["object"] == "ig/nodes-idle"]
    assert f[0]["check"] == "cost.cheaper_alternative" and "saves $15.18/month" in f[0]["message"]


def test_cost_of_throttled_group_and_surplus_options(summary: pd.DataFrame) -> None:
    opts = c.cost_options(summary.reset_index(), c.reference_prices())
    thr = opts[opts["instance_group"] == "nodes-b"].set_index("instance_type")
    assert thr.loc["t2.medium", "throttles"] and not thr.loc["t2.medium", "feasible"]
    # observed average: (326 × 10 + 10 × 20) / 336 = 10.298 % of 2 vCPU: under t3.medium's baseline
    assert thr.loc["t3.medium", "util_pct"] == pytest.approx(3460 / 336)
    assert thr.loc["t3a.medium", "recommended"]
    f = {x["object"]: x for x in c.cost_findings(c.group_table(opts))}
    fix = f["ig/nodes-b"]
    assert fix["check"] == "cost.fix_throttling" and fix["severity"] == "medium"
    # t3a.medium unlimited at 10.3 % < 20 %: 0.0376 × 730 = $27.45 vs t2.medium 0.0464 × 730 = $33.87
    assert "t3a.medium unlimited is the cheapest option that is not" in fix["message"]
    assert "saves $6.42/month" in fix["message"]
    t3 = opts[opts["instance_group"] == "nodes-burst"].set_index("instance_type")
    # current t3.medium: observed surplus scaled to a month, $0.48 / 336 h × 730 h
    assert t3.loc["t3.medium", "monthly_surplus_usd"] == pytest.approx(0.48 / 336 * 730)
    # t3a.medium at the same average, (264 × 10 + 72 × 40) / 336 = 16.43 % < 20 %: no modelled surplus
    assert t3.loc["t3a.medium", "monthly_surplus_usd"] == 0
    # c5.large (fixed, 2 vCPU, 4 GiB) is the cheapest fixed option: t3a.medium break-even
    # 20 + (0.085 - 0.0376) / 0.1 × 100 = 67.4 %
    assert t3.loc["t3a.medium", "break_even_pct"] == pytest.approx(67.4)


def test_steady_60_percent_prefers_cheapest_non_throttling_option() -> None:
    # t2.medium at a steady 60 %: t3a.medium unlimited = 0.0376 × 730 + (60 − 20) % × 2 × 730 × 0.05 = 56.648
    summ = pd.DataFrame(
        [
            {
                **dict.fromkeys(c.SUMMARY_COLUMNS, math.nan),
                "instance_id": "i-1",
                "instance_group": "g",
                "instance_type": "t2.medium",
                "credit_mode": "standard",
                "burstable": True,
                "cpu_avg": 60.0,
                "hours": 336.0,
                "throttled_hours": 0.0,
                "surplus_charged_usd": 0.0,
            }
        ]
    )
    opts = c.cost_options(summ, c.reference_prices()).set_index("instance_type")
    assert opts.loc["t2.medium", "throttles"]
    assert opts.loc["t3a.medium", "monthly_total_usd"] == pytest.approx(0.0376 * 730 + 0.4 * 2 * 730 * 0.05)
    assert opts.loc["t3a.medium", "recommended"]
    assert opts.loc["c5.large", "monthly_total_usd"] == pytest.approx(62.05)
    g = c.group_table(opts.reset_index())
    assert g.loc[0, "monthly_delta_usd"] == pytest.approx(56.648 - 33.872)
    assert c.cost_findings(g)[0]["check"] == "cost.fix_throttling"


# -- CloudWatch batching plan ------------------------------------------------------------------------------
def test_batches_respect_500_queries_and_100800_datapoints() -> None:
    start = END - timedelta(days=14)
    qs = [cloudwatch.MetricQuery(f"i-{n}", "CPUUtilization", "Average") for n in range(2500)]
    hourly = cloudwatch.batches(qs, start, END, 3600)  # 336 points → 300 queries per call
    assert [len(b) for b in hourly][:2] == [300, 300] and len(hourly) == 9
    five = cloudwatch.batches(qs, start, END, 300)  # 4032 points → 25 queries per call
    assert len(five) == 100 and max(len(b) for b in five) == 25
    day = cloudwatch.batches(qs, start, END, 86400)  # 14 points → capped by 500 queries
    assert len(day) == 5 and cloudwatch.planned_calls(2500, start, END, 86400) == 5


def test_time_window_parses_and_aligns() -> None:
    s, e = cloudwatch.time_window("2026-11-20T12:34:56Z", 14)
    assert e == END and s == END - timedelta(days=14)
    s, e = cloudwatch.time_window("", 1, 300, now=datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    assert e == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    from opsbook.errors import BadInput

    with pytest.raises(BadInput, match="ISO-8601"):
        cloudwatch.time_window("yesterday", 1)


# -- Pricing API parser --------------------------------------------------------------------------------------
def test_pricing_parser_reads_recorded_get_products_shape() -> None:
    resp = json.loads((DATA / "pricing_get_products_t3_medium.json").read_text())
    assert resp["FormatVersion"] == "aws_v1" and all(isinstance(x, str) for x in resp["PriceList"])
    df = pricing.parse_price_list(resp["PriceList"])
    # the Linux/Shared/NA/Used on-demand hourly rate only: not the Reserved term, not the Windows SKU
    assert df["instance_type"].tolist() == ["t3.medium"]
    row = df.iloc[0]
    assert row["usd_per_hour"] == 0.0416 and row["vcpu"] == 2 and row["memory_gib"] == 4.0
    assert row["region"] == "us-east-1" and row["publication_date"].startswith("20")


def test_pricing_filters_use_location_names() -> None:
    f = {x["Field"]: x["Value"] for x in pricing.product_filters("t3.medium", "eu-central-1")}
    assert f == {
        "instanceType": "t3.medium",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "location": "EU (Frankfurt)",
    }


def test_reference_fallback_says_region_is_us_east_1() -> None:
    p = pricing.reference_table(["t2.medium", "x9.huge"], "eu-central-1")
    assert p.source == "reference-table" and p.missing == ["x9.huge"]
    assert p.table["usd_per_hour"].tolist() == [0.0464]
    assert "us-east-1 rates only" in p.note and "lower bound" in p.describe()
    assert set(pricing.candidate_types(["t2.medium"])) >= {
        "t3.medium",
        "t3a.medium",
        "m5.large",
        "m6i.large",
        "c5.large",
    }


# -- plots -------------------------------------------------------------------------------------------------
def test_credit_balance_plot_draws_the_exhaustion_forecast(
    metrics: pd.DataFrame, summary: pd.DataFrame
) -> None:
    from opsbook.plots import credits as plots

    fig = plots.credit_balance(metrics, summary.reset_index())
    ax = fig.axes[0]
    assert len([ln for ln in ax.lines if ln.get_linestyle() == "-"]) == 3  # the three burstable instances
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1  # only i-burst has a finite forecast (i-thr earns what it spends; i-t3 is at 0)
    xs, ys = dashed[0].get_data()
    assert list(ys) == [288.0, 0]
    assert pd.Timestamp(xs[1]) - pd.Timestamp(xs[0]) == pd.Timedelta(hours=6)
    assert len(plots.cpu_vs_baseline(metrics, summary.reset_index()).axes) == 4
    groups = c.group_table(c.cost_options(summary.reset_index(), c.reference_prices()))
    bars = plots.monthly_cost(groups).axes[0].patches
    assert len(bars) == 2 * len(groups)


def test_no_metrics_means_no_recommendation() -> None:
    inv = INVENTORY[INVENTORY["instance_id"] == "i-m5"]
    summ = c.credit_summary(pd.DataFrame(columns=["timestamp", "instance_id", "metric", "value"]), inv)
    assert summ.loc[0, "classification"] == "insufficient-data"
    assert [f["check"] for f in c.credit_findings(summ)] == ["credits.no_data"]
    opts = c.cost_options(summ, c.reference_prices())
    assert opts["instance_type"].tolist() == ["m5.large"] and opts.loc[0, "recommended"]
    groups = c.group_table(opts)
    assert groups.loc[0, "why"].startswith("no CPU data") and groups.loc[0, "monthly_delta_usd"] == 0
    assert c.cost_findings(groups) == []
