"""The credit table and the reference prices (pandas), read once from ``opsbook/data/*.csv``."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import cache

import pandas as pd

from opsbook.data import read_text

FIXED_FAMILIES = ("m5", "m6i", "c5")  # non-burstable equivalents offered as alternatives
BURSTABLE_ALTERNATIVES = ("t3", "t3a")  # same-size unlimited alternatives (x86_64 only: no t4g)


def read_table(name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read a shipped CSV and its header comment (``# key: value`` lines, indented continuations)."""
    text = read_text(name)
    meta: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if m := re.match(r"#\s?([a-z_]+):\s*(.*)", line):
            key = m.group(1)
            meta[key] = m.group(2).strip()
        elif key and re.match(r"#\s{2,}\S", line):
            meta[key] = f"{meta[key]} {line.lstrip('#').strip()}"
        else:
            key = ""
    return pd.read_csv(io.StringIO(text), comment="#"), meta


@cache
def _credit_table() -> tuple[pd.DataFrame, dict[str, str]]:
    df, meta = read_table("burstable_credits.csv")
    df["instance_type"] = df["family"] + "." + df["size"]
    df["baseline_pct"] = df["earn_per_hour"] / df["vcpu"] / 60 * 100
    return df, meta


def credit_table() -> pd.DataFrame:
    """The burstable credit table (a copy).

    Returns:
        Columns ``family, size, instance_type, vcpu, earn_per_hour, max_balance,
        launch_credits, surplus_usd_per_vcpu_hour, default_mode, baseline_pct``.
    """
    return _credit_table()[0].copy()


def credit_table_source() -> dict[str, str]:
    """The credit table's ``source`` and ``as_of`` (from its header comment)."""
    return dict(_credit_table()[1])


@cache
def _reference_prices() -> tuple[pd.DataFrame, dict[str, str]]:
    return read_table("prices.csv")


def reference_prices() -> pd.DataFrame:
    """The shipped reference On-Demand price table (a copy).

    Returns:
        Columns ``region, instance_type, usd_per_hour, vcpu, memory_gib, arch``.
    """
    return _reference_prices()[0].copy()


def reference_prices_source() -> dict[str, str]:
    """The reference price table's ``region``, ``source`` and ``as_of`` header fields."""
    return dict(_reference_prices()[1])


@dataclass(frozen=True)
class CreditSpec:
    """Credit facts of one burstable instance type."""

    instance_type: str
    vcpu: int
    earn_per_hour: float
    max_balance: float
    launch_credits: float
    surplus_usd_per_vcpu_hour: float
    default_mode: str

    @property
    def baseline_pct(self) -> float:
        """Baseline CPU utilisation in percent of all vCPUs."""
        return self.earn_per_hour / self.vcpu / 60 * 100


def credit_spec(instance_type: str) -> CreditSpec | None:
    """The credit facts of ``instance_type``, or None when it is not a burstable type."""
    df = _credit_table()[0]
    row = df[df["instance_type"] == instance_type]
    if row.empty:
        return None
    r = row.iloc[0]
    return CreditSpec(
        instance_type,
        int(r["vcpu"]),
        float(r["earn_per_hour"]),
        float(r["max_balance"]),
        float(r["launch_credits"]),
        float(r["surplus_usd_per_vcpu_hour"]),
        str(r["default_mode"]),
    )


def is_burstable(instance_type: str) -> bool:
    """Whether the type earns CPU credits (T2, T3, T3a, T4g): it is in the credit table."""
    return credit_spec(instance_type) is not None


def burstable_families() -> tuple[str, ...]:
    """The burstable families of the credit table (``t2``, ``t3``, ``t3a``, ``t4g``)."""
    return tuple(dict.fromkeys(str(f) for f in _credit_table()[0]["family"]))


def removed_apis() -> pd.DataFrame:
    """The removed-API table (``removed_apis.csv``): what each Kubernetes minor stopped serving.

    Returns:
        Columns ``group_version, kind, deprecated_in, removed_in, replacement, note`` (all strings).
    """
    return pd.read_csv(io.StringIO(read_text("removed_apis.csv")), comment="#", dtype=str, keep_default_na=False)
