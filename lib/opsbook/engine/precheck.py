"""A runbook's own input checks, run before its kernel starts.

A notebook may name a checking function in its metadata (``opsbook.precheck:
"module:function"``). ``opsbook run`` calls it with every parameter (declared defaults
overridden by the given values) in the run's environment; a :class:`~opsbook.errors.BadInput`
it raises ends the run with exit code 2 before anything executes. The notebook calls the same
function in its first step, so papermill and JupyterLab runs get the same refusal.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from opsbook.engine.catalog import Runbook
from opsbook.errors import BadInput


def run_precheck(rb: Runbook, params: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
    """Call the runbook's precheck, if it declares one, and return what it returns.

    Raises:
        BadInput: the parameters are refused (or the precheck cannot be found).
    """
    if not rb.precheck:
        return None
    module, _, func = rb.precheck.partition(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"runbook {rb.name}: its precheck {rb.precheck!r} cannot be loaded ({e})") from e
    values = {p.name: p.default for p in rb.parameters}
    values.update(params)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        return fn(**values)
    finally:
        os.environ.clear()
        os.environ.update(old)
