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

from opsbook.analysis.credits.cost import (
    GROUP_COLUMNS,
    OPTION_COLUMNS,
    cost_findings,
    cost_options,
    group_table,
    review_record,
)
from opsbook.analysis.credits.formulas import (
    EXHAUSTION_HIGH_H,
    EXHAUSTION_MEDIUM_H,
    HOURS_PER_MONTH,
    SUMMARY_COLUMNS,
    THROTTLE_BALANCE,
    UNDER_PROVISIONED_FIXED_P95,
    break_even_pct,
    credits_used_per_hour,
    hours_to_exhaustion,
    monthly_surplus_usd,
    surplus_cost_usd,
)
from opsbook.analysis.credits.summary import credit_findings, credit_summary, throttled_periods, wide
from opsbook.data.tables import (  # the table loaders live in opsbook.data.tables; re-exported for notebooks and tests
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

__all__ = [
    "BURSTABLE_ALTERNATIVES",
    "EXHAUSTION_HIGH_H",
    "EXHAUSTION_MEDIUM_H",
    "FIXED_FAMILIES",
    "GROUP_COLUMNS",
    "HOURS_PER_MONTH",
    "OPTION_COLUMNS",
    "SUMMARY_COLUMNS",
    "THROTTLE_BALANCE",
    "UNDER_PROVISIONED_FIXED_P95",
    "CreditSpec",
    "break_even_pct",
    "cost_findings",
    "cost_options",
    "credit_findings",
    "credit_spec",
    "credit_summary",
    "credit_table",
    "credit_table_source",
    "credits_used_per_hour",
    "group_table",
    "hours_to_exhaustion",
    "is_burstable",
    "monthly_surplus_usd",
    "reference_prices",
    "reference_prices_source",
    "review_record",
    "surplus_cost_usd",
    "throttled_periods",
    "wide",
]
