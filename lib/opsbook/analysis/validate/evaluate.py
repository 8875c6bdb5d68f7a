"""One validation: every check on one snapshot, the kops verdict, the notes on what was not checked."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from opsbook.analysis import kops_parity as kp
from opsbook.analysis.validate.catalog import NEEDS
from opsbook.analysis.validate.config import check_certs, check_image_tags, check_resources, check_service_endpoints
from opsbook.analysis.validate.frames import _empty
from opsbook.analysis.validate.kops import kops_evaluations, tolerate_unready
from opsbook.analysis.validate.model import Inputs, Options, Validation
from opsbook.analysis.validate.nodes import check_node_burstable, check_node_pressure, check_node_unschedulable
from opsbook.analysis.validate.score import apply_exclude, score
from opsbook.analysis.validate.workloads import (
    check_crashloop,
    check_deployments,
    check_image_pull,
    check_oomkilled,
    check_pdbs,
    check_pending,
    check_restarts,
    check_single_replica,
)
from opsbook.report import SEVERITY_RANK


def evaluate(inputs: Inputs, options: Options | None = None, now: datetime | None = None) -> Validation:
    """Run every check on ``inputs`` (pure: no API calls).

    Args:
        inputs: snapshot + AWS side, from :func:`collect`.
        options: thresholds, ``fail_on`` and exclusions.
        now: reference time (default: the snapshot's time).
    """
    o = options or Options()
    snap = inputs.snapshot
    now = now or snap.taken_at
    n, p = snap.nodes, snap.pods
    verdict = kops_verdict(inputs)
    kops_evals, tolerated = tolerate_unready(kops_evaluations(verdict, n, p), n, o.max_unready_nodes)
    parts = [
        kops_evals,
        check_node_pressure(n), check_node_unschedulable(n), check_node_burstable(n),
        check_pending(p, now, o.pending_grace_s), check_crashloop(p), check_image_pull(p),
        check_restarts(p, o.restart_threshold), check_oomkilled(p),
        check_deployments(snap.deployments), check_single_replica(snap.deployments), check_pdbs(snap.pdbs),
        check_resources(p), check_image_tags(p), check_service_endpoints(snap.services),
        check_certs(snap.certs, now, o.cert_days), check_certs(inputs.apiserver_certs, now, o.cert_days,
                                                              "certs.apiserver"),
    ]
    evals = pd.concat([x for x in parts if not x.empty] or [_empty()], ignore_index=True)
    # a kind we may not list would look like "nothing there": drop the checks that need it (noted instead)
    degraded = {c for kind in snap.notes for c in NEEDS.get(kind, ())}
    evals = evals[~evals["check"].isin(degraded)]
    kept, excluded = apply_exclude(evals, o.exclude)
    found = kept[kept["severity"] != ""]
    rank = found["severity"].map(SEVERITY_RANK)
    findings = found.assign(_r=rank).sort_values(["_r", "group", "check", "object"],
                                                 ascending=[False, True, True, True]).drop(columns="_r")
    kops_left = int(((found["group"] == "kops") & (rank >= SEVERITY_RANK["high"])).sum())
    passed = kops_left == 0 and not (rank >= SEVERITY_RANK[o.fail_on]).any()
    return Validation(evaluations=kept.reset_index(drop=True), findings=findings.reset_index(drop=True),
                      excluded=excluded.reset_index(drop=True), notes=notes_frame(inputs),
                      score=score(kept), passed=bool(passed), kops_failures=len(verdict.failures), inputs=inputs,
                      at=now, kops=verdict, tolerated=tolerated)


def kops_verdict(inputs: Inputs) -> kp.KopsVerdict:
    """What ``kops validate cluster`` would answer for ``inputs`` (nodes and pods only without AWS)."""
    snap = inputs.snapshot
    if inputs.cloud is None or inputs.igs is None:
        return kp.validate_nodes_only(snap.nodes, snap.pods)
    c = inputs.cloud
    return kp.validate(inputs.igs, c.asgs, c.members, c.instances, snap.nodes, snap.pods, inputs.api_addresses)


def notes_frame(inputs: Inputs) -> pd.DataFrame:
    """Degraded checks (``check, note``): forbidden kinds and unavailable AWS/TLS sources."""
    rows = [{"check": c, "note": f"{kind}: {why}"} for kind, why in inputs.snapshot.notes.items()
            for c in NEEDS.get(kind, ())]
    rows += [{"check": c, "note": why} for c, why in inputs.notes.items()]
    return pd.DataFrame(rows, columns=["check", "note"])
