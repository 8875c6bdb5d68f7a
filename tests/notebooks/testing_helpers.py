"""Tiny helpers used by the engine's test notebooks (so the notebooks stay branch-free).

Not part of the package: a runbook's kernel starts in the notebook's directory (here) and imports this
file from there.
"""

from __future__ import annotations


def maybe_fail(where: str) -> str:
    """Raise ZeroDivisionError when ``where == "divide"``; otherwise return "ok"."""
    if where == "divide":
        raise ZeroDivisionError("division by zero while splitting work across 0 nodes")
    return "ok"


def dump_namespace(namespace: str) -> str:
    """Everything a careless cell could print: pod env and args, ConfigMaps, event messages."""
    from kubernetes import client as k8s

    from opsbook.k8s.client import api_client

    api = api_client()
    core = k8s.CoreV1Api(api)
    lines = ["PODS"]
    for pod in core.list_namespaced_pod(namespace).items:
        for c in pod.spec.containers:
            lines.append(f"{pod.metadata.name} args={c.args} command={c.command}")
            lines.extend(f"  {e.name}={e.value}" for e in c.env or [])
    lines.append("CONFIGMAPS")
    for cm in core.list_namespaced_config_map(namespace).items:
        lines.extend(f"{cm.metadata.name}/{k}: {v}" for k, v in (cm.data or {}).items())
    lines.append("EVENTS")
    lines.extend(f"{e.reason}: {e.message}" for e in core.list_namespaced_event(namespace).items)
    return "\n".join(lines)


def pause(seconds: float) -> float:
    """Sleep (a long step for tests that interrupt a run); return the seconds slept."""
    import time

    time.sleep(seconds)
    return seconds


def raise_error(name: str) -> None:
    """Raise the :mod:`opsbook.errors` class called ``name`` (the exit-code tests' notebook)."""
    from opsbook import errors

    cls = getattr(errors, name)
    raise cls(f"{name} raised on purpose by the exit-code test notebook")
