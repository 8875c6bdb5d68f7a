"""Kubernetes events from core/v1 and events.k8s.io/v1, normalised into one DataFrame.

The two APIs serve the same objects with different field names
(``involvedObject``/``regarding``, ``message``/``note``, ``count``/``series.count``).
Scheduler events have null ``firstTimestamp``/``lastTimestamp``, so an event's
time is, in order: ``eventTime``, ``series.lastObservedTime``, ``lastTimestamp``,
``metadata.creationTimestamp`` (docs/design.md, "Event times"). Repeats the API already merged into
``count`` are kept as counts; :func:`merge_repeats` merges the rest.

Events live only ``--event-ttl`` (1 h by default): :mod:`opsbook.archive` keeps
older ones, and :func:`opsbook.archive.collect_events` reads both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from kubernetes import client as k8s

from opsbook.k8s.client import Forbidden, api_client, boundary, continue_kwargs, pages
from opsbook.report import object_id

log = logging.getLogger(__name__)

EVENT_COLUMNS = [
    "time",
    "first_time",
    "namespace",
    "kind",
    "name",
    "object",
    "reason",
    "message",
    "type",
    "count",
    "component",
    "api",
    "uid",
    "event",
]
"""Columns of a normalised events frame (see :func:`normalise_events`)."""


def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _row(e: Mapping[str, Any]) -> tuple[Any, ...]:
    meta = e.get("metadata") or {}
    new_api = "regarding" in e or "note" in e or e.get("apiVersion") == "events.k8s.io/v1"
    obj = (e.get("regarding") if new_api else e.get("involvedObject")) or {}
    series = e.get("series") or {}
    if new_api:
        last = e.get("deprecatedLastTimestamp")
        first = e.get("deprecatedFirstTimestamp")
        count = series.get("count") or e.get("deprecatedCount") or 1
        message = e.get("note") or ""
        component = e.get("reportingController") or _get(e, "deprecatedSource", "component") or ""
    else:
        last = e.get("lastTimestamp")
        first = e.get("firstTimestamp")
        count = e.get("count") or series.get("count") or 1
        message = e.get("message") or ""
        component = _get(e, "source", "component") or e.get("reportingComponent") or ""
    # docs/design.md ("Event times") fallback: eventTime, series.lastObservedTime, lastTimestamp, creationTimestamp
    when = e.get("eventTime") or series.get("lastObservedTime") or last or meta.get("creationTimestamp")
    first = first or e.get("eventTime") or meta.get("creationTimestamp")
    ns = obj.get("namespace") or ""  # empty for cluster-scoped objects (a Node's events live in "default")
    kind = obj.get("kind") or ""
    name = obj.get("name") or ""
    return (
        when,
        first,
        ns,
        kind,
        name,
        object_id(kind, name, ns),
        e.get("reason") or "",
        message,
        e.get("type") or "",
        int(count),
        component,
        "events.k8s.io/v1" if new_api else "v1",
        meta.get("uid") or "",
        f"event/{meta.get('namespace') or ''}/{meta.get('name') or ''}",
    )


def normalise_events(items: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Normalise raw event dicts of either API into one frame, one row per event object.

    Args:
        items: events as JSON dicts (camelCase, as the API server or the archive returns them).

    Returns:
        DataFrame with columns ``time`` (UTC, the fallback of docs/design.md), ``first_time``, ``namespace``,
        ``kind``, ``name``, ``object`` (``kind/ns/name`` from :func:`opsbook.report.object_id`), ``reason``,
        ``message``, ``type``
        (Normal/Warning), ``count`` (repeats), ``component`` (who reported it), ``api``, ``uid``,
        ``event`` (``event/<ns>/<name>``, the evidence link). Objects seen twice (same uid, e.g. from
        both APIs or an archive) are kept once, with the highest count.
    """
    rows = [_row(e) for e in items]
    df = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    df["first_time"] = pd.to_datetime(df["first_time"], utc=True, format="ISO8601")
    df["count"] = df["count"].astype("int64")
    if len(df):
        has_uid = df["uid"] != ""
        keyed = df[has_uid].sort_values(["uid", "count", "time"]).drop_duplicates("uid", keep="last")
        df = pd.concat([keyed, df[~has_uid]], ignore_index=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def merge_repeats(events: pd.DataFrame) -> pd.DataFrame:
    """Merge events with the same object, reason and message into one row, counts summed.

    Args:
        events: a frame from :func:`normalise_events`.

    Returns:
        The same columns; ``time`` is the last occurrence, ``first_time`` the first, ``count`` the sum.
    """
    if events.empty:
        return events.copy()
    keys = ["object", "reason", "message"]
    agg = events.groupby(keys, sort=False, dropna=False).agg(
        time=("time", "max"), first_time=("first_time", "min"), count=("count", "sum")
    )
    rest = events.sort_values("time").drop_duplicates(keys, keep="last").set_index(keys)
    rest = rest.drop(columns=["time", "first_time", "count"])
    out = agg.join(rest).reset_index()[EVENT_COLUMNS]
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def in_window(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Events whose [first_time, time] interval overlaps [start, end]."""
    first = events["first_time"].fillna(events["time"])
    return events[(events["time"] >= start) & (first <= end)].reset_index(drop=True)


def _list_raw(fn: Any, *args: Any, limit: int = 500) -> list[dict[str, Any]]:
    """Page through a ``list_*`` call as raw JSON dicts.

    Raw, because kubernetes-client 37's ``EventsV1Event`` model refuses the null ``eventTime`` that
    events written through core/v1 have (and skipping the models is faster for 10^5 events).
    """

    def fetch(token: str | None) -> Any:
        return json.loads(fn(*args, **continue_kwargs(token, limit, _preload_content=False)).data)

    return [item for page in pages(fetch) for item in page.get("items") or []]


def list_events(
    api: k8s.ApiClient | None = None, namespace: str | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Raw events from both APIs as JSON dicts, plus notes on what could not be read.

    Args:
        api: Kubernetes client (default: the configured cluster).
        namespace: only this namespace (default: all).

    Returns:
        (events, notes). A forbidden or missing API is a note, not an error, as long as one works.
    """
    api = api or api_client()
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    core = k8s.CoreV1Api(api)
    ev1 = k8s.EventsV1Api(api)
    sources: list[tuple[str, Any, tuple[Any, ...]]] = [
        (
            "core/v1 events",
            core.list_namespaced_event if namespace else core.list_event_for_all_namespaces,
            (namespace,) if namespace else (),
        ),
        (
            "events.k8s.io/v1 events",
            ev1.list_namespaced_event if namespace else ev1.list_event_for_all_namespaces,
            (namespace,) if namespace else (),
        ),
    ]
    for what, fn, args in sources:
        api_version = "events.k8s.io/v1" if "events.k8s.io" in what else "v1"
        try:
            with boundary(f"listing {what}", api):
                items = _list_raw(fn, *args)
        except Forbidden as e:
            notes.append(str(e))
            continue
        for d in items:
            d.setdefault("apiVersion", api_version)
            out.append(d)
    if notes and not out:
        log.warning("no events readable: %s", "; ".join(notes))
    return out, notes
