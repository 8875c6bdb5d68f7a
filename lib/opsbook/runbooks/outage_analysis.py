"""The outage-analysis runbook's façade: the window, the evidence, the likely causes, the story.

``notebooks/outage-analysis.ipynb`` calls these in order, one step per cell, so a reader can stop at
any step during an incident. Collection reads events (live, joined with the events archive:
:func:`opsbook.archive.collect_events`), the cluster's current state
(:func:`opsbook.k8s.evidence.collect_k8s_evidence`) and the AWS side
(:func:`opsbook.aws.evidence.collect_aws_evidence`); the detectors and their ranking are pure
(:mod:`opsbook.analysis.outage`), and so are the timeline and the post-mortem draft. The notebook
imports nothing else of the library but :mod:`opsbook.report`: the detectors' cache, the findings
conversion, the swimlane plot and the post-mortem steps are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from opsbook import archive
from opsbook.analysis import outage, timeline
from opsbook.analysis.outage import MetricsCache, outage_findings, summary
from opsbook.analysis.postmortem import draft as postmortem_draft
from opsbook.analysis.postmortem import save as save_postmortem
from opsbook.analysis.postmortem import times as postmortem_times
from opsbook.analysis.timeline import Incident
from opsbook.aws import evidence as aws_evidence
from opsbook.aws import session
from opsbook.aws.metric_specs import metric_owners
from opsbook.k8s import evidence as k8s_evidence
from opsbook.plots.timeline import swimlanes

__all__ = ["AwsSide", "Incident", "MetricsCache", "aws_side", "check_metrics", "cluster_events", "cluster_state",
           "likely_causes", "outage_findings", "postmortem_draft", "postmortem_times", "save_postmortem", "story",
           "summary", "swimlanes", "window"]


def window(start: str, end: str, last_hours: float, *, title: str, extra_metrics: Sequence[str],
           instance_metrics: Sequence[str], alerts: dict[str, str]) -> Incident:
    """The parameters checked into an :class:`Incident` (pure; see :func:`opsbook.analysis.timeline.incident`)."""
    return timeline.incident(start, end, last_hours, title=title, extra_metrics=extra_metrics,
                             instance_metrics=instance_metrics, alerts=alerts)


def check_metrics(incident: Incident, region: str = "") -> None:
    """Every extra metric exists in CloudWatch, before anything is read (raises BadInput, exit 2)."""
    aws_evidence.check_metrics_exist(incident.extra_metrics, region or None)


def cluster_events(incident: Incident, namespaces: Sequence[str] = (),
                   events_archive: str = "") -> tuple[pd.DataFrame, list[str]]:
    """Events from an hour before the window to its end: live, joined with the archive when given."""
    return archive.collect_events(incident.history_start, incident.end, namespaces=list(namespaces) or None,
                                  archive=events_archive or None)


def cluster_state(namespaces: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Evidence rows from what the cluster looks like now (nodes, pods, rollouts, certificates)."""
    return k8s_evidence.collect_k8s_evidence(namespaces=list(namespaces) or None)


@dataclass
class AwsSide:
    """The AWS evidence of the window.

    Attributes:
        rows: evidence rows (ASG activities, terminations, alarm history).
        metrics: CloudWatch series (``time, namespace, metric, id, value``).
        instances: the cluster's instances, terminated ones included.
        notes: sources that could not be read, and why.
    """

    rows: pd.DataFrame
    metrics: pd.DataFrame
    instances: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def aws_side(incident: Incident, cluster_name: str = "", region: str = "") -> AwsSide:
    """The cluster's AWS evidence (``cluster_name`` empty: ``$KOPS_CLUSTER_NAME``)."""
    rows, metrics, instances, notes = aws_evidence.collect_aws_evidence(
        cluster_name or session.cluster_name(), incident.start, incident.end, region or None,
        incident.extra_metrics, incident.instance_metrics)
    return AwsSide(rows, metrics, instances, notes)


def likely_causes(incident: Incident, events: pd.DataFrame, state: pd.DataFrame, aws: AwsSide, *,
                  node_monitor_grace_seconds: int = 40, toleration_seconds: int = 300,
                  cache: outage.MetricsCache | None = None) -> pd.DataFrame:
    """Every detector on the window, ranked: causes first, then standing problems, then noise.

    ``cache`` keeps what the detectors computed from the metrics for :func:`story`.
    """
    return outage.run_detectors(
        events, [state, aws.rows], aws.metrics, incident.start, incident.end, aws.instances,
        outage.Config(node_monitor_grace_s=node_monitor_grace_seconds, toleration_s=toleration_seconds),
        owners=metric_owners(incident.extra_metrics), cache=cache)


def story(incident: Incident, events: pd.DataFrame, state: pd.DataFrame, aws: AwsSide, *,
          collapse_seconds: int = 30, cache: outage.MetricsCache | None = None) -> pd.DataFrame:
    """The merged timeline of the window, rows of one object group closer than ``collapse_seconds`` collapsed."""
    return timeline.build_timeline(events, [state, aws.rows], incident, gap=collapse_seconds, metrics=aws.metrics,
                                   cache=cache)
