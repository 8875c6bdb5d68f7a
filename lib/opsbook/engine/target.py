"""What a run looked at: cluster, Kubernetes context and time window, for the report's header.

Read from the run's parameters and environment only (the kubeconfig file is
parsed, never contacted), so a report can say what it was about even when the
run failed before reaching the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from opsbook.display import format_time

CLUSTER_PARAMS = ("cluster_name", "cluster")
NOT_SET = "not set"


def kube_context(environ: Mapping[str, str]) -> tuple[str, str]:
    """``(context, server)`` of the kubeconfig in ``environ`` (``KUBECONFIG``, else ``~/.kube/config``).

    Returns ``("none", "")`` when there is no kubeconfig and ``("unreadable", "")`` when it cannot be parsed.
    """
    raw = environ.get("KUBECONFIG", "")
    paths = [Path(p) for p in raw.split(os.pathsep) if p] or [Path("~/.kube/config").expanduser()]
    existing = [p for p in paths if p.is_file()]
    if not existing:
        return "none", ""
    try:
        docs = [yaml.safe_load(p.read_text()) or {} for p in existing]
    except (OSError, yaml.YAMLError):
        return "unreadable", ""
    current = next((d.get("current-context") for d in docs if d.get("current-context")), "")
    ctx = next((c for d in docs for c in d.get("contexts") or [] if c.get("name") == current), None)
    cluster = (ctx or {}).get("context", {}).get("cluster", "")
    clusters = [c for d in docs for c in d.get("clusters") or [] if c.get("name") == cluster]
    server = clusters[0].get("cluster", {}).get("server", "") if clusters else ""
    return str(current or "none"), str(server)


def cluster_name(parameters: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The kops cluster a run is about: its ``cluster_name``/``cluster`` parameter, else ``$KOPS_CLUSTER_NAME``."""
    for p in CLUSTER_PARAMS:
        v = parameters.get(p)
        if isinstance(v, str) and v:
            return v
    return environ.get("KOPS_CLUSTER_NAME", "") or NOT_SET


def window(parameters: Mapping[str, Any], started: datetime) -> str:
    """The time window a run looked at, in words (UTC, to the second)."""
    start, end = parameters.get("start") or "", parameters.get("end") or ""
    end_txt = str(end) if end else format_time(started)
    if start:
        return f"{start} to {end_txt}"
    if parameters.get("last_hours"):
        return f"{parameters['last_hours']} h before {end_txt}"
    if parameters.get("window_days"):
        return f"{parameters['window_days']} days before {end_txt}"
    return f"the cluster as it was at {format_time(started)}"


def describe(parameters: Mapping[str, Any], environ: Mapping[str, str], started: datetime) -> dict[str, str]:
    """``cluster, context, server, window`` of a run, as text."""
    context, server = kube_context(environ)
    return {
        "cluster": cluster_name(parameters, environ),
        "context": context,
        "server": server,
        "window": window(parameters, started),
    }
