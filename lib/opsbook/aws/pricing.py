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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import AwsError

log = logging.getLogger(__name__)

PRICING_REGION = "us-east-1"
PRICE_COLUMNS = ["instance_type", "region", "usd_per_hour", "vcpu", "memory_gib", "source"]
# Pricing API "location" attribute of the regions this team uses (regionCode is filtered otherwise)
LOCATIONS = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-2": "US West (Oregon)",
    "eu-central-1": "EU (Frankfurt)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)",
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
        what = "AWS Pricing API" if self.source == "pricing-api" else "opsbook's reference price table"
        s = f"On-Demand Linux prices for {self.region} from the {what} (as of {self.as_of})."
        if self.note:
            s += f" {self.note}"
        if self.missing:
            s += f" No price for: {', '.join(self.missing)}."
        return s


def product_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for one instance type's shared-tenancy Linux On-Demand price."""
    f = [("instanceType", instance_type), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
         ("preInstalledSw", "NA"), ("capacitystatus", "Used")]
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
        Columns ``instance_type, region, usd_per_hour, vcpu, memory_gib, effective_date, publication_date, sku``.
    """
    rows = []
    for item in price_list:
        doc = json.loads(item) if isinstance(item, str) else item
        prod = doc.get("product", {})
        a = prod.get("attributes", {})
        if (a.get("operatingSystem"), a.get("tenancy"), a.get("preInstalledSw"), a.get("capacitystatus", "Used")) \
                != ("Linux", "Shared", "NA", "Used") or "instanceType" not in a:
            continue
        for term in doc.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                usd = dim.get("pricePerUnit", {}).get("USD")
                if dim.get("unit") != "Hrs" or usd is None:
                    continue
                rows.append({
                    "instance_type": a["instanceType"], "region": a.get("regionCode", ""),
                    "usd_per_hour": float(usd), "vcpu": int(a["vcpu"]) if str(a.get("vcpu", "")).isdigit() else 0,
                    "memory_gib": _memory_gib(str(a.get("memory", ""))),
                    "effective_date": term.get("effectiveDate", ""), "publication_date": doc.get("publicationDate", ""),
                    "sku": prod.get("sku", ""),
                })
    cols = ["instance_type", "region", "usd_per_hour", "vcpu", "memory_gib", "effective_date",
            "publication_date", "sku"]
    df = pd.DataFrame(rows, columns=cols)
    # a zero-priced "Used" SKU shows up for some types (e.g. capacity reservations): keep the real rate
    return df[df["usd_per_hour"] > 0].sort_values("usd_per_hour").drop_duplicates("instance_type").reset_index(
        drop=True)


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
                    ServiceCode="AmazonEC2", Filters=product_filters(t, region), FormatVersion="aws_v1"):
                items.extend(page.get("PriceList", []))
    df = parse_price_list(items)
    df["region"] = df["region"].replace("", region)
    return df


def reference_table(instance_types: Iterable[str], region: str) -> Prices:
    """Prices from the shipped reference table (us-east-1 rates)."""
    from opsbook.analysis.credits import reference_prices, reference_prices_source

    meta = reference_prices_source()
    ref = reference_prices()
    in_region = ref[ref["region"] == region]
    note = ""
    if in_region.empty:
        in_region = ref[ref["region"] == "us-east-1"]
        note = (f"The table holds us-east-1 rates only; {region} usually costs more, so these costs are a lower "
                "bound. Allow `pricing:GetProducts` for exact figures.")
    want = sorted(set(instance_types))
    t = in_region[in_region["instance_type"].isin(want)].copy()
    t["source"] = "reference-table"
    missing = [x for x in want if x not in set(t["instance_type"])]
    return Prices(t[PRICE_COLUMNS].reset_index(drop=True), "reference-table", meta.get("as_of", "?").split(" ")[0],
                  region, note, missing)


def on_demand_prices(instance_types: Iterable[str], region: str, pricing: Any = None, *,
                     use_api: bool = True) -> Prices:
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
            fb.note = f"Pricing API unavailable ({e}). {fb.note}".strip()
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


def candidate_types(current: Iterable[str]) -> list[str]:
    """The current types plus every alternative :func:`opsbook.analysis.credits.cost_options` may consider."""
    from opsbook.analysis.credits import BURSTABLE_ALTERNATIVES, FIXED_FAMILIES, reference_prices

    ref = reference_prices()
    out = set(current)
    for t in current:
        size = t.split(".", 1)[1] if "." in t else ""
        out.update(f"{fam}.{size}" for fam in BURSTABLE_ALTERNATIVES)
        row = ref[ref["instance_type"] == t]
        vcpu = int(row["vcpu"].iloc[0]) if not row.empty else None
        if vcpu is not None:
            same = ref[(ref["vcpu"] == vcpu) & ref["instance_type"].str.split(".").str[0].isin(FIXED_FAMILIES)]
            out.update(same["instance_type"])
    return sorted(out)
