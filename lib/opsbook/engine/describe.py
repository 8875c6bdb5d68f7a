"""Runbooks as plain data, for ``opsbook list --format json`` and ``opsbook describe --format json``."""

from __future__ import annotations

from typing import Any

from opsbook.engine.catalog import Runbook


def runbook_dict(rb: Runbook, full: bool = True) -> dict[str, Any]:
    """A runbook's name, purpose, whether it mutates, what it needs and its parameters (JSON-ready)."""
    params = [
        {
            "name": p.name,
            "type": p.describe_type(),
            "default": None if p.required else p.default,
            "required": p.required,
            "help": p.help,
        }
        for p in rb.parameters
    ]
    out: dict[str, Any] = {
        "name": rb.name,
        "purpose": rb.purpose,
        "mutates": rb.mutates,
        "needs": list(rb.needs),
        "parameters": params,
    }
    if full:
        out["description"] = rb.description
        out["path"] = str(rb.path)
    return out
