"""Which CloudWatch metrics a runbook may read: the names and the ``Namespace/Name:Dims:Stat@owner`` specs.

Pure parsing (no client): the outage analysis checks its parameters with it before any call.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from opsbook.errors import BadInput

INSTANCE_METRICS = (
    "CPUUtilization",
    "CPUCreditBalance",
    "CPUCreditUsage",
    "CPUSurplusCreditBalance",
    "CPUSurplusCreditsCharged",
    "StatusCheckFailed",
    "NetworkIn",
    "NetworkOut",
)
"""AWS/EC2 metrics the runbook can read per instance; any other name is a :class:`BadInput`."""

_SPEC = re.compile(r"^(?P<ns>[^/\s]+(?:/[^/\s]+)*)/(?P<name>[^/\s:]+)(?::(?P<dims>.*))?$")


@dataclass(frozen=True)
class MetricSpec:
    """An extra CloudWatch metric: ``Namespace/Name:Dim=Value,Dim2=Value2[:Stat]``."""

    namespace: str
    name: str
    dimensions: dict[str, str] = field(default_factory=dict)
    stat: str = "Average"
    owner: str = ""
    """The workload that consumes/serves what the metric measures (``ns/deployment``, after ``@``)."""

    @property
    def label(self) -> str:
        """``Name`` plus its dimension values, for a legend or a timeline row."""
        dims = ",".join(self.dimensions.values())
        return f"{self.name}{'(' + dims + ')' if dims else ''}"


STATS = ("Average", "Sum", "Maximum", "Minimum", "SampleCount")


def parse_metric_spec(text: str) -> MetricSpec:
    """Parse ``Namespace/Name:Dim=Value,Dim2=Value2:Stat@ns/deployment`` (all but the name optional).

    The ``@ns/deployment`` tail names the workload behind the metric (e.g. the queue's consumer), so a
    finding about the metric can say which Deployment to restart.

    Examples: ``AWS/SQS/ApproximateNumberOfMessagesVisible:QueueName=taxi-position``,
    ``Custom/RabbitMQ/QueueDepth:Queue=TaxiPosition:Maximum``.

    Raises:
        BadInput: the text is not of that form, or a dimension/statistic is malformed.
    """
    text, _, owner = text.strip().partition("@")
    parts = text.strip().split(":")
    head, dims_text = parts[0], parts[1] if len(parts) > 1 else ""
    stat = parts[2] if len(parts) > 2 else "Average"
    if len(parts) > 3 or "/" not in head or head.endswith("/") or head.startswith("/"):
        raise BadInput(
            f"extra metric {text!r} is not 'Namespace/MetricName[:Dim=Value,...][:Stat]', e.g. "
            "'AWS/SQS/ApproximateNumberOfMessagesVisible:QueueName=orders'"
        )
    ns, name = head.rsplit("/", 1)
    dims: dict[str, str] = {}
    for kv in filter(None, dims_text.split(",")):
        if "=" not in kv:
            raise BadInput(f"extra metric {text!r}: dimension {kv!r} is not Name=Value")
        k, v = kv.split("=", 1)
        dims[k.strip()] = v.strip()
    if stat not in STATS:
        raise BadInput(f"extra metric {text!r}: statistic {stat!r} is not one of {', '.join(STATS)}")
    if owner and owner.count("/") != 1:
        raise BadInput(f"extra metric owner {owner!r} is not 'namespace/deployment'")
    return MetricSpec(ns, name, dims, stat, owner.strip())


def metric_owners(specs: Sequence[MetricSpec]) -> dict[str, str]:
    """Series id (the spec's label) → ``ns/deployment`` for the extra metrics that name their workload."""
    return {s.label: s.owner for s in specs if s.owner}


def check_instance_metrics(names: Sequence[str]) -> list[str]:
    """Validate per-instance metric names (no API call).

    Raises:
        BadInput: a name is not one of :data:`INSTANCE_METRICS` (with the closest match).
    """
    for n in names:
        if n not in INSTANCE_METRICS:
            close = difflib.get_close_matches(n, INSTANCE_METRICS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BadInput(f"unknown instance metric {n!r}: choose from {', '.join(INSTANCE_METRICS)}.{hint}")
    return list(names)
