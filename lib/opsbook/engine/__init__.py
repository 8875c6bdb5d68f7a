"""The runbook engine: discover notebooks, check parameters, execute, write immutable reports."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsbook.engine.catalog import Runbook, catalog, find_runbook
    from opsbook.engine.params import Parameter, parse_parameters
    from opsbook.engine.run import RunResult, run_runbook

__all__ = ["Parameter", "RunResult", "Runbook", "catalog", "find_runbook", "parse_parameters", "run_runbook"]

# imported on first use: `opsbook run` starts its kernel before nbformat, nbclient and papermill are loaded
_WHERE = {
    "Runbook": "catalog",
    "catalog": "catalog",
    "find_runbook": "catalog",
    "Parameter": "params",
    "parse_parameters": "params",
    "RunResult": "run",
    "run_runbook": "run",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"opsbook.engine.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'opsbook.engine' has no attribute {name!r}")
