"""Group ``workloads``: pending, crash-looping, image pulls, restarts, OOM kills, deployments, PDBs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from opsbook.analysis.validate.catalog import WAITING_IMAGE
from opsbook.analysis.validate.frames import _evals


def _live(pods: pd.DataFrame) -> pd.DataFrame:
    # (astype: an empty frame's object column would index columns instead of rows)
    return pods[~pods["terminating"].astype(bool)]


def check_pending(pods: pd.DataFrame, now: datetime, grace_s: int = 120) -> pd.DataFrame:
    """``workloads.pending``: pods Pending longer than ``grace_s``, with the scheduler's reason."""
    live = _live(pods)
    age = (pd.Timestamp(now) - pd.to_datetime(live["created"], utc=True)).dt.total_seconds()
    mask = (live["phase"] == "Pending") & (age.fillna(0) >= grace_s)

    def msg(r: Any) -> str:
        why = (f"{r.scheduled_reason}: {r.scheduled_message}" if r.scheduled_reason
               else r.waiting_reason or "not yet started")
        return f"pod {r.namespace}/{r.name} is Pending: {why}"

    return _evals("workloads.pending", live, mask, "medium", msg,
                  lambda r: f"kubectl -n {r.namespace} describe pod {r.name}")


def check_crashloop(pods: pd.DataFrame) -> pd.DataFrame:
    """``workloads.crashloop``: containers in CrashLoopBackOff."""
    live = _live(pods)
    return _evals("workloads.crashloop", live, live["waiting_reason"] == "CrashLoopBackOff", "high",
                  lambda r: (f"pod {r.namespace}/{r.name} is in CrashLoopBackOff after {r.restarts} restarts"
                             f"{' (last exit: OOMKilled)' if r.oom_killed else ''}: {r.waiting_message}"),
                  lambda r: f"kubectl -n {r.namespace} logs {r.name} --previous")


def check_image_pull(pods: pd.DataFrame) -> pd.DataFrame:
    """``workloads.image_pull``: containers that cannot pull their image."""
    live = _live(pods)
    return _evals("workloads.image_pull", live, live["waiting_reason"].isin(WAITING_IMAGE), "high",
                  lambda r: (f"pod {r.namespace}/{r.name} cannot pull its image ({r.waiting_reason}): "
                             f"{r.waiting_message or 'check the image name, tag and registry credentials.'}"),
                  lambda r: f"kubectl -n {r.namespace} describe pod {r.name}")


def check_restarts(pods: pd.DataFrame, threshold: int = 5) -> pd.DataFrame:
    """``workloads.restarts``: pods whose containers restarted at least ``threshold`` times."""
    live = _live(pods)
    return _evals("workloads.restarts", live, live["restarts"] >= threshold, "medium",
                  lambda r: (f"pod {r.namespace}/{r.name} restarted {r.restarts} times "
                             f"(threshold {threshold})"),
                  lambda r: f"kubectl -n {r.namespace} logs {r.name} --previous")


def check_oomkilled(pods: pd.DataFrame) -> pd.DataFrame:
    """``workloads.oomkilled``: a container's last termination was OOMKilled."""
    live = _live(pods)
    return _evals("workloads.oomkilled", live, live["oom_killed"].astype(bool), "medium",
                  lambda r: (f"pod {r.namespace}/{r.name} was OOMKilled: raise its memory limit "
                             "or fix the leak."))


def check_deployments(deployments: pd.DataFrame) -> pd.DataFrame:
    """``workloads.deployment_available``: available replicas below desired."""
    d = deployments
    sev = pd.Series("medium", index=d.index).mask(d["available"] == 0, "high")
    return _evals("workloads.deployment_available", d, d["available"] < d["desired"], sev,
                  lambda r: (f"deployment {r.namespace}/{r.name}: {r.available}/{r.desired} "
                             "replicas available."),
                  lambda r: f"kubectl -n {r.namespace} rollout status deployment/{r.name}")


def check_single_replica(deployments: pd.DataFrame) -> pd.DataFrame:
    """``workloads.single_replica``: deployments with one replica (no redundancy during a drain)."""
    d = deployments
    return _evals("workloads.single_replica", d, d["desired"] == 1, "low",
                  lambda r: (f"deployment {r.namespace}/{r.name} runs one replica: it is down "
                             "during every drain."))


def check_pdbs(pdbs: pd.DataFrame) -> pd.DataFrame:
    """``workloads.pdb_blocks_drain``: PodDisruptionBudgets that allow no disruption (block every drain)."""
    b = pdbs
    mask = (b["disruptions_allowed"] == 0) & (b["expected_pods"] > 0)

    def msg(r: Any) -> str:
        spec = f"minAvailable={r.min_available}" if r.min_available else f"maxUnavailable={r.max_unavailable}"
        return (f"PDB {r.namespace}/{r.name} allows 0 disruptions ({spec}, "
                f"{r.current_healthy}/{r.expected_pods} healthy): node drains and rolling updates "
                "will hang on its pods.")

    return _evals("workloads.pdb_blocks_drain", b, mask, "medium", msg,
                  lambda r: f"kubectl -n {r.namespace} get pdb {r.name} -o yaml")
