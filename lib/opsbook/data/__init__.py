"""The shipped data tables and their loaders: one place each fact is said.

- ``burstable_credits.csv``: the CPU-credit table of every burstable type (T2, T3, T3a, T4g);
  ``is_burstable`` and ``burstable_families`` (:mod:`opsbook.data.tables`) are read from it, never hard-coded.
- ``prices.csv``: reference On-Demand prices (used when the Pricing API cannot be asked).
- ``removed_apis.csv``: Kubernetes APIs removed by each release (read by :mod:`opsbook.analysis.upgrade`).
- ``kwok-stages.yaml``: the sandbox's kwok Stages (read by :mod:`opsbook.sandbox.cluster`).

Each CSV carries its source and date in its header comment (:func:`opsbook.data.tables.read_table`).
"""

from __future__ import annotations

from importlib import resources


def read_text(name: str) -> str:
    """A shipped data file's text."""
    return resources.files("opsbook.data").joinpath(name).read_text(encoding="utf-8")
