"""EC2 On-Demand prices: the AWS Pricing API first, the shipped reference table when it is missing.

The Pricing API (``pricing:GetProducts``, endpoints in us-east-1, eu-central-1 and
ap-south-1) is the source of truth. moto has no Pricing API, older partitions and
locked-down roles have none either: then :func:`on_demand_prices` falls back to
``opsbook/data/prices.csv`` and says so (its ``source``, ``as_of`` and a ``note``
when the table does not cover the region: it holds us-east-1 rates only, a lower
bound elsewhere).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.data.tables import BURSTABLE_ALTERNATIVES, FIXED_FAMILIES, reference_prices, reference_prices_source
from opsbook.errors import AwsError

log = logging.getLogger(__name__)

PRICING_REGION = "us-east-1"
PRICE_COLUMNS = ["instance_type", "region", "usd_per_hour", "vcpu", "memory_gib", "source"]
# Pricing API "location" attribute of the regions this team uses (regionCode is filtered otherwise)
LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-north-1": "EU (Stockholm)",
}


@dataclass
class Prices:
    """A price table and where it came from.

    Attributes:
        table: columns ``PRICE_COLUMNS`` (one row per instance type).
        source: ``pricing-api`` or ``reference-table``.
        as_of: publication date of the API's price list, or the reference table's date.
        region: the region asked for.
        note: why the fallback was used, or what it does not cover.
    """

    table: pd.DataFrame
    source: str
    as_of: str
    region: str
    note: str = ""
    missing: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One sentence for the report."""
        what = "the AWS Pricing API" if self.source == "pricing-api" else "opsbook's reference price table"
        s = f"On-Demand Linux prices for {self.region} from {what} (as of {self.as_of})."
        if self.note:
            s += f" {self.note}"
        if self.missing:
            s += f" No price for: {', '.join(self.missing)}."
        return s


def product_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for one instance type's shared-tenancy Linux On-Demand price."""
    f = [
        ("instanceType", instance_type),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("capacitystatus", "Used"),
    ]
    f.append(("location", LOCATIONS[region]) if region in LOCATIONS else ("regionCode", region))
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in f]


def _memory_gib(text: str) -> float:
    try:
        return float(text.replace(",", "").split()[0])
    except (ValueError, IndexError):
        return float("nan")


def parse_price_list(price_list: Iterable[str | dict[str, Any]]) -> pd.DataFrame:
    """Parse the ``PriceList`` of GetProducts responses (JSON strings) into one row per product.

    Only hourly On-Demand USD rates of Linux, shared-tenancy, no-pre-installed-software,
    "Used" capacity products are kept; Reserved terms, upfront fees and other products
    are skipped.

    Returns:
        Columns ``instance_type, region, usd_per_hour, vcpu, memory_gib, effective_date, publication_date,
        sku``.
    """
    rows = []
    for item in price_list:
        doc = json.loads(item) if isinstance(item, str) else item
        prod = doc.get("product", {})
        a = prod.get("attributes", {})
        if (
            a.get("operatingSystem"),
            a.get("tenancy"),
            a.get("preInstalledSw"),
            a.get("capacitystatus", "Used"),
        ) != ("Linux", "Shared", "NA", "Used") or "instanceType" not in a:
            continue
        for term in doc.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                usd = dim.get("pricePerUnit", {}).get("USD")
                if dim.get("unit") != "Hrs" or usd is None:
                    continue
                rows.append(
                    {
                        "instance_type": a["instanceType"],
                        "region": a.get("regionCode", ""),
                        "usd_per_hour": float(usd),
                        "vcpu": int(a["vcpu"]) if str(a.get("vcpu", "")).isdigit() else 0,
                        "memory_gib": _memory_gib(str(a.get("memory", ""))),
                        "effective_date": term.get("effectiveDate", ""),
                        "publication_date": doc.get("publicationDate", ""),
                        "sku": prod.get("sku", ""),
                    }
                )
    cols = [
        "instance_type",
        "region",
        "usd_per_hour",
        "vcpu",
        "memory_gib",
        "effective_date",
        "publication_date",
        "sku",
    ]
    df = pd.DataFrame(rows, columns=cols)
    # a zero-priced "Used" SKU shows up for some types (e.g. capacity reservations): keep the real rate
    return (
        df[df["usd_per_hour"] > 0]
        .sort_values("usd_per_hour")
        .drop_duplicates("instance_type")
        .reset_index(drop=True)
    )


def api_prices(instance_types: Iterable[str], region: str, pricing: Any = None) -> pd.DataFrame:
    """Prices from the Pricing API (one paginated GetProducts per instance type).

    Raises:
        AwsError: the API failed; ApiUnavailable when it does not exist here or access is denied.
    """
    pricing = pricing or aws_client("pricing", PRICING_REGION)
    items: list[str] = []
    for t in sorted(set(instance_types)):
        with boundary(f"pricing GetProducts {t} in {region}"):
            for page in pricing.get_paginator("get_products").paginate(
                ServiceCode="AmazonEC2", Filters=product_filters(t, region), FormatVersion="aws_v1"
            ):
                items.extend(page.get("PriceList", []))
    df = parse_price_list(items)
    df["region"] = df["region"].replace("", region)
    return df


def reference_table(instance_types: Iterable[str], region: str) -> Prices:
    """Prices from the shipped reference table (us-east-1 rates)."""
    meta = reference_prices_source()
    ref = reference_prices()
    in_region = ref[ref["region"] == region]
    note = ""
    if in_region.empty:
        in_region = ref[ref["region"] == "us-east-1"]
        note = (
            f"The table holds us-east-1 rates only; {region} usually costs more, so these costs are a lower "
            "bound. Allow `pricing:GetProducts` for exact figures."
        )
    want = sorted(set(instance_types))
    t = in_region[in_region["instance_type"].isin(want)].copy()
    t["source"] = "reference-table"
    missing = [x for x in want if x not in set(t["instance_type"])]
    return Prices(
        t[PRICE_COLUMNS].reset_index(drop=True),
        "reference-table",
        meta.get("as_of", "?").split(" ")[0],
        region,
        note,
        missing,
    )


def on_demand_prices(
    instance_types: Iterable[str], region: str, pricing: Any = None, *, use_api: bool = True
) -> Prices:
    """On-Demand Linux prices: the Pricing API when reachable, else the reference table (and why).

    Args:
        instance_types: types to price (current and alternatives).
        region: the cluster's region.
        pricing: boto3 Pricing client (default: one in us-east-1).
        use_api: ask the Pricing API at all.
    """
    types = sorted(set(instance_types))
    if use_api:
        try:
            df = api_prices(types, region, pricing)
        except AwsError as e:
            fb = reference_table(types, region)
            fb.note = f"Pricing API unavailable ({_short(e)}). {fb.note}".strip()
            log.info("pricing: falling back to the reference table: %s", e)
            return fb
        if not df.empty:
            df["source"] = "pricing-api"
            missing = [t for t in types if t not in set(df["instance_type"])]
            table = df[PRICE_COLUMNS]
            note = ""
            if missing:  # fill the gaps from the table, saying so
                fb = reference_table(missing, region)
                table = pd.concat([table, fb.table], ignore_index=True)
                note = f"Not in the Pricing API answer, taken from the reference table: {', '.join(missing)}."
                missing = fb.missing
            as_of = str(df["publication_date"].max() or df["effective_date"].max())[:10]
            return Prices(table.reset_index(drop=True), "pricing-api", as_of, region, note, missing)
    fb = reference_table(types, region)
    if use_api:
        fb.note = f"The Pricing API returned no products. {fb.note}".strip()
    return fb


def _short(e: Exception) -> str:
    """An error message without HTML bodies (some endpoints answer unknown services with an HTML 500 page)."""
    text = re.sub(r"<[^>]+>", " ", str(e))
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 160 else text[:157] + "..."


def candidate_types(current: Iterable[str]) -> list[str]:
    """The current types plus every alternative :func:`opsbook.analysis.credits.cost_options` may consider."""
    ref = reference_prices()
    out = set(current)
    for t in current:
        size = t.split(".", 1)[1] if "." in t else ""
        out.update(f"{fam}.{size}" for fam in BURSTABLE_ALTERNATIVES)
        row = ref[ref["instance_type"] == t]
        vcpu = int(row["vcpu"].iloc[0]) if not row.empty else None
        if vcpu is not None:
            same = ref[
                (ref["vcpu"] == vcpu) & ref["instance_type"].str.split(".").str[0].isin(FIXED_FAMILIES)
            ]
            out.update(same["instance_type"])
    return sorted(out)


# -- Cost Explorer actuals ----------------------------------------------------------------------------
EC2_COMPUTE_SERVICE = "Amazon Elastic Compute Cloud - Compute"


@dataclass
class Actuals:
    """What Cost Explorer says was spent (``table`` empty when it could not tell, ``note`` says why).

    Attributes:
        table: columns ``period_start, period_end, instance_type, usd, estimated``.
        note: how it was filtered, or why there is nothing.
    """

    table: pd.DataFrame
    note: str = ""

    def record(self) -> dict[str, Any]:
        """What a scheduled run keeps: total USD (None when unknown) and the note."""
        usd = None if self.table.empty else round(float(self.table["usd"].sum()), 2)
        return {"usd": usd, "note": self.note}

    def describe(self) -> str:
        """One sentence for the report."""
        if self.table.empty:
            return f"No Cost Explorer actuals. {self.note}".strip()
        return (
            f"Cost Explorer: ${self.table['usd'].sum():.2f} unblended EC2 compute cost over "
            f"{self.table['period_start'].min()} → {self.table['period_end'].max()}. {self.note}"
        ).strip()


def cost_explorer_actuals(start: Any, end: Any, cluster: str | None = None, ce: Any = None) -> Actuals:
    """Unblended EC2 compute cost per instance type over ``[start, end)`` from Cost Explorer.

    With ``cluster`` the query filters on the ``KubernetesCluster`` tag, which Cost Explorer only knows
    once it is activated as a cost allocation tag. A missing API or permission gives an empty table and
    a note, never an exception.

    Args:
        start: window start (date or datetime).
        end: window end (date or datetime).
        cluster: kops cluster name to filter on (tag ``KubernetesCluster``; default ``$KOPS_CLUSTER_NAME``,
            no tag filter when neither is set).
        ce: boto3 Cost Explorer client (default: one in us-east-1).
    """
    ce = ce or aws_client("ce", PRICING_REGION)
    cluster = cluster or os.environ.get("KOPS_CLUSTER_NAME") or None
    cols = ["period_start", "period_end", "instance_type", "usd", "estimated"]
    svc = {"Dimensions": {"Key": "SERVICE", "Values": [EC2_COMPUTE_SERVICE]}}
    flt: dict[str, Any] = svc
    note = "All EC2 compute in the account."
    if cluster:
        flt = {"And": [svc, {"Tags": {"Key": "KubernetesCluster", "Values": [cluster]}}]}
        note = f"Tag KubernetesCluster={cluster} (must be an activated cost allocation tag)."
    kwargs: dict[str, Any] = {
        "TimePeriod": {"Start": str(start)[:10], "End": str(end)[:10]},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "Filter": flt,
        "GroupBy": [{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}],
    }
    rows = []
    try:
        while True:
            with boundary("cost explorer GetCostAndUsage"):
                resp = ce.get_cost_and_usage(**kwargs)
            for period in resp.get("ResultsByTime", []):
                tp = period.get("TimePeriod", {})
                groups = period.get("Groups") or [{"Keys": ["(all)"], "Metrics": period.get("Total", {})}]
                for g in groups:
                    m: dict[str, Any] = g.get("Metrics", {}).get("UnblendedCost") or next(
                        iter(g.get("Metrics", {}).values()), {}
                    )
                    if m:
                        rows.append(
                            (
                                tp.get("Start", ""),
                                tp.get("End", ""),
                                g["Keys"][0],
                                float(m["Amount"]),
                                bool(period.get("Estimated", False)),
                            )
                        )
            token = resp.get("NextPageToken")
            if not token:
                break
            kwargs["NextPageToken"] = token
    except AwsError as e:
        return Actuals(pd.DataFrame(columns=cols), f"Cost Explorer unavailable ({_short(e)}).")
    return Actuals(pd.DataFrame(rows, columns=cols), note)


def prices_for_inventory(
    inventory: pd.DataFrame, region: str | None = None, pricing: Any = None, *, use_api: bool = True
) -> Prices:
    """Prices of the inventory's instance types and all their alternatives (see :func:`candidate_types`).

    Args:
        inventory: from :func:`opsbook.aws.ec2.inventory` (``instance_type``, ``zone``).
        region: the cluster's region (default ``$AWS_REGION``, else the first instance's zone minus its
            letter).
        pricing: boto3 Pricing client.
        use_api: ask the Pricing API at all.
    """
    region = (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or (str(inventory["zone"].iloc[0])[:-1] if not inventory.empty else PRICING_REGION)
    )
    return on_demand_prices(
        candidate_types(list(inventory["instance_type"].unique())), region, pricing, use_api=use_api
    )
