"""The runbook engine: discover notebooks, check parameters, execute, write immutable reports."""

from opsbook.engine.catalog import Runbook, catalog, find_runbook
from opsbook.engine.params import Parameter, parse_parameters
from opsbook.engine.run import RunResult, run_runbook

__all__ = ["Parameter", "RunResult", "Runbook", "catalog", "find_runbook", "parse_parameters", "run_runbook"]
