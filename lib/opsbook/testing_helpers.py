"""Tiny helpers used by the engine's test notebooks (kept in lib so notebooks stay branch-free)."""

from __future__ import annotations


def maybe_fail(where: str) -> str:
    """Raise ZeroDivisionError when ``where == "divide"``; otherwise return "ok"."""
    if where == "divide":
        raise ZeroDivisionError("division by zero while splitting work across 0 nodes")
    return "ok"
