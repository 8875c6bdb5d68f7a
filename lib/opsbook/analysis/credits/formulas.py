"""The AWS burstable-instance formulas, the thresholds and the summary columns."""

from __future__ import annotations

import math

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
