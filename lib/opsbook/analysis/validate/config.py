"""Groups ``config`` and ``certificates``: resources, image tags, service endpoints, certificate expiry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from opsbook.analysis import certs as certmod
from opsbook.analysis.validate.catalog import CHECKS, EVAL_COLUMNS
from opsbook.analysis.validate.frames import _empty, _evals
from opsbook.analysis.validate.workloads import _live


def _workloads(pods: pd.DataFrame) -> pd.DataFrame:
    """One representative pod per owning workload (config is the same for all its pods)."""
    live = _live(pods)
    rep = live.drop_duplicates("workload")
    return rep.assign(object=rep["workload"])


def image_tag_problem(image: str) -> str:
    """``"untagged"``, ``"latest"`` or ``""`` for an image reference (digests are pinned)."""
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged"
    return "latest" if last.rsplit(":", 1)[1] == "latest" else ""


def check_resources(pods: pd.DataFrame) -> pd.DataFrame:
    """``config.resources``: containers without CPU+memory requests or a memory limit (per workload)."""
    w = _workloads(pods)
    missing = w["containers"].map(lambda cs: [c[0] for c in cs if not (c[2] and c[3])])

    def msg(r: Any) -> str:
        bad = [c for c in r.containers if not (c[2] and c[3])]
        parts = [f"{c[0]} ({'no requests' if not c[2] else ''}{', ' if not c[2] and not c[3] else ''}"
                 f"{'no memory limit' if not c[3] else ''})" for c in bad]
        return f"{r.workload}: containers without requests/limits: {', '.join(parts)}."

    return _evals("config.resources", w, missing.map(bool), "low", msg)


def check_image_tags(pods: pd.DataFrame) -> pd.DataFrame:
    """``config.image_tag``: images on ``latest`` or untagged (per workload)."""
    w = _workloads(pods)
    bad = w["containers"].map(lambda cs: [f"{c[1]} ({p})" for c in cs if (p := image_tag_problem(c[1]))])
    return _evals("config.image_tag", w.assign(bad=bad), bad.map(bool), "low",
                  lambda r: f"{r.workload}: unpinned images {', '.join(r.bad)}: pin a version tag or digest.")


def check_service_endpoints(services: pd.DataFrame) -> pd.DataFrame:
    """``config.service_endpoints``: services with a selector but no ready endpoint."""
    s = services[(services["type"] != "ExternalName") & services["has_selector"].astype(bool)]
    if s["ready_endpoints"].isna().any():
        return _empty()
    return _evals("config.service_endpoints", s, s["ready_endpoints"].astype(int) == 0, "medium",
                  lambda r: (f"service {r.namespace}/{r.name} has no ready endpoints: its selector matches "
                             "no ready pod, callers get connection refused."),
                  lambda r: f"kubectl -n {r.namespace} get endpointslices "
                  f"-l kubernetes.io/service-name={r.name}")


def check_certs(certs: pd.DataFrame, now: datetime, days: int, check: str = "certs.expiry") -> pd.DataFrame:
    """``certs.expiry`` / ``certs.apiserver``: certificates expiring within ``days``."""
    ev = certmod.expiry_evaluations(certs, now, days)
    if ev.empty:
        return _empty()
    return ev.assign(check=check, group=CHECKS[check])[EVAL_COLUMNS]
