"""Run every detector on one window and rank the findings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from opsbook.analysis.outage.asg import detect_asg_termination
from opsbook.analysis.outage.certificates import detect_certificate_expiry
from opsbook.analysis.outage.common import Config, _empty_findings
from opsbook.analysis.outage.consumer import detect_consumer_stalled
from opsbook.analysis.outage.control_plane import detect_control_plane_restart
from opsbook.analysis.outage.cpu_credits import detect_cpu_credits
from opsbook.analysis.outage.merge import merge_ec2_death, merge_zone_outage
from opsbook.analysis.outage.metrics import MetricsCache
from opsbook.analysis.outage.nodes import detect_node_lost
from opsbook.analysis.outage.ranking import rank
from opsbook.analysis.outage.rollout import (
    detect_crashloop_after_rollout,
    detect_standing_crashloop,
    detect_unready_after_rollout,
)
from opsbook.report import ROW_COLUMNS


def run_detectors(
    events: pd.DataFrame,
    evidence: pd.DataFrame | Sequence[pd.DataFrame],
    metrics: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    instances: pd.DataFrame | None = None,
    config: Config = Config(),
    owners: dict[str, str] | None = None,
    cache: MetricsCache | None = None,
) -> pd.DataFrame:
    """Run every detector and rank the likely causes.

    Args:
        events: normalised events (:func:`opsbook.k8s.events.normalise_events`), any window.
        evidence: evidence rows (Kubernetes state, AWS): one frame or several.
        metrics: metrics frame (time, namespace, metric, id, value), or None.
        start: window start (UTC).
        end: window end (UTC).
        instances: the cluster's instances (instance_id, instance_type, private_dns) to name things.
        config: configured delays to compare with.
        owners: extra-metric series id → ``ns/deployment`` behind it (``consumer.stalled`` names it).
        cache: what was computed from ``metrics`` (pass the one the timeline used); a fresh one if None.

    Returns:
        Findings (:data:`FINDING_COLUMNS`), rank 1 = the most likely cause; empty when nothing fired.
    """
    if not isinstance(evidence, pd.DataFrame):
        frames = [e for e in evidence if len(e)]
        evidence = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(
                {c: pd.Series(dtype="datetime64[ns, UTC]" if c == "time" else "object") for c in ROW_COLUMNS}
            )
        )
    if metrics is None:
        metrics = pd.DataFrame(
            {c: pd.Series(dtype="object") for c in ("time", "namespace", "metric", "id", "value")}
        )
    cache = MetricsCache() if cache is None else cache
    ev = events
    if len(ev):
        ev = ev[(ev["time"] >= start) & (ev["first_time"].fillna(ev["time"]) <= end)]
        # a repeated event that began before the window: its only occurrence known to be inside is the last
        ev = ev.assign(first_time=ev["first_time"].where(ev["first_time"] >= start, ev["time"]))
    evd = evidence
    if len(evd):
        evd = evd[
            evd["time"].isna()
            | ((evd["time"] >= start) & (evd["time"] <= end))
            | (evd["source"] == "certificate")
        ]
    found: list[dict[str, Any]] = []
    lost = detect_node_lost(ev, evd, config, history_events=events, history=evidence)
    found += lost
    lost_nodes = {f["object"].split("/", 1)[1] for f in lost if f["data"].get("evictions")}
    runs: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: detect_control_plane_restart(ev, evd, start, end, history=evidence, history_events=events),
        lambda: detect_cpu_credits(metrics, instances, config, cache=cache),
        lambda: detect_crashloop_after_rollout(ev, evd, config, evidence),
        lambda: detect_unready_after_rollout(ev, evd, config, evidence),
        lambda: detect_certificate_expiry(ev, evidence, start, end, config),
        lambda: detect_asg_termination(evd, instances, start, end, lost_nodes),
    ]
    for run in runs:
        found += run()
    explained = {str(f["data"].get("replicaset")) for f in found if f["check"] == "rollout.crashloop"}
    found += detect_standing_crashloop(events, evidence, start, explained)
    found += detect_consumer_stalled(metrics, owners, cache=cache)
    found = merge_ec2_death(found)
    found = merge_zone_outage(found, instances)
    if not found:
        return _empty_findings()
    return rank(pd.DataFrame(found), start, end, config)


