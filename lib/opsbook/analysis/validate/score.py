"""Exclusions (``namespace:``, ``check:``, ``object:`` rules) and the score they cannot distort."""

from __future__ import annotations

import fnmatch

import pandas as pd

from opsbook.analysis.validate.catalog import EXCLUDE_KINDS
from opsbook.errors import BadInput


def parse_exclude(rules: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """``["namespace:kube-*", "check:config.*"]`` -> ``[("namespace", "kube-*"), ...]``.

    Raises:
        BadInput: a rule without one of the prefixes ``namespace:``, ``check:``, ``object:``.
    """
    out = []
    for r in rules:
        kind, sep, pattern = str(r).partition(":")
        if not sep or kind not in EXCLUDE_KINDS or not pattern:
            raise BadInput(f"exclude rule {r!r} must look like namespace:<glob>, check:<glob> or "
                           "object:<glob> (e.g. namespace:kube-system, check:config.*, "
                           "object:pod/default/legacy-*)")
        out.append((kind, pattern))
    return out


def apply_exclude(evals: pd.DataFrame,
                  rules: tuple[str, ...] | list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split evaluations into (kept, excluded); ``excluded`` gains the ``rule`` that matched first."""
    rule_of = pd.Series("", index=evals.index)
    for kind, pattern in parse_exclude(rules):
        col = {"namespace": "namespace", "check": "check", "object": "object"}[kind]
        hit = evals[col].astype(str).str.match(fnmatch.translate(pattern)) & (rule_of == "")
        rule_of[hit] = f"{kind}:{pattern}"
    mask = rule_of != ""
    return evals[~mask], evals[mask].assign(rule=rule_of[mask])


def score(evals: pd.DataFrame) -> float:
    """Percentage of evaluations without a finding above ``info`` (100 when nothing was evaluated)."""
    if evals.empty:
        return 100.0
    failing = ~evals["severity"].isin(["", "info"])
    return round(100.0 * (1 - float(failing.sum()) / len(evals)), 1)
