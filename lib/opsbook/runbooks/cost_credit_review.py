"""The cost-credit-review runbook's façade: the burstable fleet, its CPU credits, and what it costs.

``notebooks/cost-credit-review.ipynb`` calls these in order, one step per cell. Collection reads the
instances by instance group (:func:`opsbook.aws.ec2.inventory`), their CloudWatch credit metrics in
batched GetMetricData calls (:func:`opsbook.aws.cloudwatch.fetch_credit_metrics`), prices (the Pricing
API, else the shipped reference table) and Cost Explorer actuals (:mod:`opsbook.aws.pricing`); the
credit formulas, the summary and the cost options are pure (:mod:`opsbook.analysis.credits`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis import credits
from opsbook.aws import cloudwatch, ec2, pricing
from opsbook.aws.cloudwatch import MetricData
from opsbook.aws.pricing import Actuals, Prices
from opsbook.plots.credits import cpu_vs_baseline, credit_balance, monthly_cost

__all__ = ["Actuals", "MetricData", "Prices", "actuals", "cost_findings", "cost_options", "cpu_vs_baseline",
           "credit_balance", "credit_findings", "credit_metrics", "credit_summary", "group_summary", "group_table",
           "instances", "inventory_findings", "monthly_cost", "prices", "review_record"]

# pure steps, as the analysis names them
group_summary = ec2.group_summary
inventory_findings = ec2.inventory_findings
credit_summary = credits.credit_summary
credit_findings = credits.credit_findings
group_table = credits.group_table
cost_findings = credits.cost_findings
review_record = credits.review_record


def instances(cluster_name: str = "", region: str = "") -> pd.DataFrame:
    """The cluster's instances by instance group, with credit mode and node (empty: ``$KOPS_CLUSTER_NAME``)."""
    return ec2.inventory(cluster_name or None, region or None)


def credit_metrics(inventory: pd.DataFrame, end: str = "", window_days: int = 14, period_minutes: int = 60,
                   region: str = "") -> MetricData:
    """CPU and credit metrics of ``inventory``'s instances over the window ending at ``end`` (empty: now)."""
    return cloudwatch.fetch_credit_metrics(inventory, end=end, days=window_days, period_minutes=period_minutes,
                                           region=region or None)


def prices(inventory: pd.DataFrame, region: str = "", use_pricing_api: bool = True) -> Prices:
    """Prices of the instance types and their alternatives: the Pricing API first, else the dated table."""
    return pricing.prices_for_inventory(inventory, region or None, use_api=use_pricing_api)


def actuals(data: MetricData, cluster_name: str = "") -> Actuals:
    """What Cost Explorer says the window cost (empty with a note when it cannot be asked)."""
    return pricing.cost_explorer_actuals(data.start, data.end, cluster_name or None)


def cost_options(summary: pd.DataFrame, prices: Prices) -> Any:
    """Per instance: what it costs now and with each alternative (credit mode, size, family)."""
    return credits.cost_options(summary, prices.table)
