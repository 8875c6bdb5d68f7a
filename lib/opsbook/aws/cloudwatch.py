"""EC2 CPU and credit metrics from CloudWatch, fetched with batched GetMetricData.

One ``GetMetricData`` call carries up to 500 queries and returns up to 100,800
datapoints before paginating with ``NextToken``. :func:`get_metric_data` packs as
many queries into a call as fit under that datapoint limit (so a 14-day,
hourly window packs 300 queries a call, a 14-day 5-minute window 25), follows
``NextToken`` when AWS paginates anyway, and returns one long DataFrame. The
naive alternative, ``GetMetricStatistics`` per instance and metric, returns at
most 1,440 datapoints per call: see ``benches/credits_getmetricdata.py``.

moto notes: moto's ``get_metric_data`` ignores ``Namespace`` when ``Dimensions``
are given (queries here always give ``InstanceId``, so a same-named metric with
exactly that dimension in another namespace would be mixed in; AWS keeps them
apart), never paginates, and is O(queries × periods × stored points) server
side, so the sandbox seeds hourly points.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd

from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.data.tables import is_burstable
from opsbook.errors import BadInput
from opsbook.times import parse_time

log = logging.getLogger(__name__)

EC2_NAMESPACE = "AWS/EC2"
MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
MAX_DATAPOINTS_PER_STATISTICS_CALL = 1_440
# metric -> statistic per period (usage and charges are summed; balance at its lowest; CPU averaged)
CREDIT_METRICS: dict[str, str] = {
    "CPUUtilization": "Average",
    "CPUCreditUsage": "Sum",
    "CPUCreditBalance": "Minimum",
    "CPUSurplusCreditBalance": "Maximum",
    "CPUSurplusCreditsCharged": "Sum",
}
FRAME_COLUMNS = ["timestamp", "instance_id", "metric", "stat", "value"]
Series = tuple[str, str, Mapping[str, str], str]
"""One metric series to read: ``(namespace, metric name, dimensions, statistic)``."""
T = TypeVar("T")


@dataclass(frozen=True)
class MetricQuery:
    """One metric of one instance."""

    instance_id: str
    metric: str
    stat: str
    namespace: str = EC2_NAMESPACE


@contextmanager
def counting(client: Any) -> Iterator[Counter[str]]:
    """Count the HTTP requests a boto3 client sends inside the block, by operation.

    Counted on botocore's ``before-send`` event, so every page and every retry is one request.

    Yields:
        A Counter keyed by operation name (``GetMetricData``), updated live.
    """
    counts: Counter[str] = Counter()

    def _hook(event_name: str = "", **_: Any) -> None:
        counts[event_name.rsplit(".", 1)[-1]] += 1

    uid = f"opsbook-count-{id(counts)}"
    client.meta.events.register("before-send.*.*", _hook, unique_id=uid)
    try:
        yield counts
    finally:
        client.meta.events.unregister("before-send.*.*", unique_id=uid)


def points_per_query(start: datetime, end: datetime, period_s: int) -> int:
    """Datapoints one query can return over ``[start, end)`` at ``period_s``."""
    return max(1, math.ceil((end - start).total_seconds() / period_s))


def batches(
    queries: Sequence[T],
    start: datetime,
    end: datetime,
    period_s: int,
    max_datapoints: int = MAX_DATAPOINTS_PER_CALL,
) -> list[list[T]]:
    """Split queries into GetMetricData calls: ≤ 500 queries and ≤ ``max_datapoints`` points per call."""
    per_call = max(1, min(MAX_QUERIES_PER_CALL, max_datapoints // points_per_query(start, end, period_s)))
    return [list(queries[i : i + per_call]) for i in range(0, len(queries), per_call)]


def planned_calls(n_queries: int, start: datetime, end: datetime, period_s: int) -> int:
    """GetMetricData calls :func:`get_metric_data` needs when AWS does not paginate further."""
    per_call = max(
        1, min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // points_per_query(start, end, period_s))
    )
    return math.ceil(n_queries / per_call)


def metric_data(
    series: Sequence[Series], start: datetime, end: datetime, period_s: int, cw: Any
) -> Iterator[tuple[int, list[Any], list[float]]]:
    """The one GetMetricData batcher: ``(index into series, timestamps, values)`` per result page.

    Packs as many series into a call as fit under 500 queries and 100,800 datapoints
    (:func:`batches`), follows ``NextToken``, and logs series CloudWatch did not answer completely.

    Raises:
        AwsError: the call failed (ApiUnavailable when CloudWatch is missing or denied).
    """
    for batch in batches(range(len(series)), start, end, period_s):
        mdq = []
        for i in batch:
            ns, name, dims, stat = series[i]
            mdq.append({
                "Id": f"q{i}",
                "ReturnData": True,
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": name,
                               "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
                    "Period": period_s,
                    "Stat": stat,
                },
            })
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": mdq,
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
                "MaxDatapoints": MAX_DATAPOINTS_PER_CALL,
            }
            if token:
                kwargs["NextToken"] = token
            with boundary(f"cloudwatch GetMetricData ({len(mdq)} queries)"):
                resp = cw.get_metric_data(**kwargs)
            for res in resp.get("MetricDataResults", []):
                i = int(res["Id"][1:])
                if res.get("StatusCode") not in (None, "Complete", "PartialData"):
                    log.warning("GetMetricData %s: status %s", series[i][:3], res.get("StatusCode"))
                yield i, list(res.get("Timestamps", [])), [float(v) for v in res.get("Values", [])]
            token = resp.get("NextToken")
            if not token:
                break


def get_metric_data(
    queries: Sequence[MetricQuery],
    start: datetime,
    end: datetime,
    period_s: int = 3600,
    cw: Any = None,
    region: str | None = None,
) -> pd.DataFrame:
    """Fetch many metric statistics with as few GetMetricData calls as possible.

    Args:
        queries: what to fetch (one per instance and metric).
        start: window start (inclusive, UTC).
        end: window end (exclusive, UTC).
        period_s: statistics period in seconds (60 multiple; 300 is the finest for EC2 credit metrics).
        cw: a boto3 CloudWatch client (default: one for ``region``).
        region: AWS region when ``cw`` is not given.

    Returns:
        Long frame, columns ``timestamp`` (UTC), ``instance_id``, ``metric``, ``stat``, ``value``,
        sorted by instance, metric, timestamp.

    Raises:
        BadInput: the period is not a positive multiple of 60 or the window is empty.
        AwsError: the call failed (ApiUnavailable when CloudWatch is missing or denied).
    """
    if period_s <= 0 or period_s % 60:
        raise BadInput(f"period {period_s}s: CloudWatch periods are positive multiples of 60 seconds")
    if end <= start:
        raise BadInput(f"empty window: start {start.isoformat()} is not before end {end.isoformat()}")
    cw = cw or aws_client("cloudwatch", region)
    series = [(q.namespace, q.metric, {"InstanceId": q.instance_id}, q.stat) for q in queries]
    rows: list[tuple[Any, str, str, str, float]] = []
    for i, stamps, values in metric_data(series, start, end, period_s, cw):
        q = queries[i]
        rows.extend((ts, q.instance_id, q.metric, q.stat, v) for ts, v in zip(stamps, values, strict=False))
    df = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    if not df.empty:
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        df = df.drop_duplicates(["instance_id", "metric", "timestamp"], keep="last")
    return df.sort_values(["instance_id", "metric", "timestamp"]).reset_index(drop=True)


def credit_queries(inventory: pd.DataFrame, metrics: dict[str, str] | None = None) -> list[MetricQuery]:
    """Queries for every instance: all credit metrics for burstable types, CPUUtilization for the rest.

    Args:
        inventory: needs ``instance_id`` and ``instance_type``.
        metrics: metric -> statistic (default :data:`CREDIT_METRICS`).
    """
    metrics = metrics or CREDIT_METRICS
    out = []
    for r in inventory.itertuples():
        for name, stat in metrics.items():
            if name == "CPUUtilization" or is_burstable(str(r.instance_type)):
                out.append(MetricQuery(str(r.instance_id), name, stat))
    return out


def time_window(
    end: str | datetime | None, days: float, period_s: int = 3600, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``(start, end)`` of a look-back window, ``end`` rounded down to the period.

    Args:
        end: ISO-8601 UTC timestamp, a datetime, or empty/None for now.
        days: window length in days.
        period_s: statistics period (the window is aligned to it).
        now: the current time (tests).

    Raises:
        BadInput: ``end`` is not an ISO-8601 timestamp or ``days`` is not positive.
    """
    if days <= 0:
        raise BadInput(f"window of {days} days: give a positive number of days")
    e = parse_time(end if end else now or datetime.now(UTC), "end")
    epoch = int(e.timestamp()) // period_s * period_s
    e = datetime.fromtimestamp(epoch, UTC)
    return e - timedelta(days=days), e


@dataclass
class MetricData:
    """What :func:`fetch_credit_metrics` fetched, and what it cost."""

    frame: pd.DataFrame
    start: datetime
    end: datetime
    period_s: int
    queries: int
    api_calls: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the notebook."""
        calls = ", ".join(f"{n} {op}" for op, n in sorted(self.api_calls.items())) or "no calls"
        return (
            f"{len(self.frame)} datapoints for {self.queries} queries, {self.start:%Y-%m-%d %H:%M} → "
            f"{self.end:%Y-%m-%d %H:%M} UTC every {self.period_s // 60} min, with {calls}"
        )


def fetch_credit_metrics(
    inventory: pd.DataFrame,
    end: str | datetime | None = None,
    days: float = 14,
    period_minutes: int = 60,
    cw: Any = None,
    region: str | None = None,
) -> MetricData:
    """CPU and credit metrics of the inventory's instances over the window (batched GetMetricData).

    Args:
        inventory: from :func:`opsbook.aws.ec2.inventory` (``instance_id``, ``instance_type``).
        end: end of the window (ISO-8601 UTC, empty = now).
        days: window length in days.
        period_minutes: statistics period (5 = CloudWatch's finest for credit metrics; 60 = hourly).
        cw: a boto3 CloudWatch client.
        region: AWS region when ``cw`` is not given.
    """
    period_s = period_minutes * 60
    start, stop = time_window(end, days, period_s)
    cw = cw or aws_client("cloudwatch", region)
    queries = credit_queries(inventory)
    with counting(cw) as counts:
        frame = (
            get_metric_data(queries, start, stop, period_s, cw=cw)
            if queries
            else pd.DataFrame(columns=FRAME_COLUMNS)
        )
    return MetricData(frame, start, stop, period_s, len(queries), dict(counts))
