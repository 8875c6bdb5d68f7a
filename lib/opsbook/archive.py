"""An events archive: watch Kubernetes events and append them as JSON lines, locally or to S3.

The API server keeps events only ``--event-ttl`` (1 h by default), so a
post-mortem written the next morning finds nothing. ``opsbook events archive``
(:func:`archive_events`) watches core/v1 events (the full object: ``series``, ``eventTime``,
``count``; kubernetes-client's events.k8s.io/v1 model rejects null ``eventTime``) and appends every
version of every event, one JSON object per line:

- a local path: ``<dir>/events-YYYY-MM-DD.jsonl`` (one file per UTC day), or the
  file itself when the path ends in ``.jsonl``;
- ``s3://bucket/prefix``: S3 objects cannot be appended to, so the archive writes
  one object per flush, ``<prefix>/events-YYYY-MM-DD/<timestamp>-<n>.jsonl``.

Each line is the event as the API returns it plus ``"_archived"`` (epoch seconds
when it was written). :func:`read_archive` reads a window back; the analysis
dedupes events by uid, keeping the highest count.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from opsbook.errors import BadInput, OpsbookError

log = logging.getLogger(__name__)


def _split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise BadInput(f"{url!r} has no bucket: use s3://bucket/prefix")
    return bucket, prefix.strip("/")


@dataclass
class Sink:
    """Where archived lines go (local path or ``s3://bucket/prefix``); buffers and flushes."""

    target: str
    s3: Any = None
    buffer: list[str] = field(default_factory=list)
    written: int = 0
    objects: list[str] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        if self.target.startswith("s3://"):
            _split_s3(self.target)
            if self.s3 is None:
                from opsbook.aws.session import client

                self.s3 = client("s3")
        elif not self.target:
            raise BadInput("give an --output: a directory, a .jsonl file or s3://bucket/prefix")

    def add(self, event: dict[str, Any]) -> None:
        """Queue one event (flushed by :meth:`flush`)."""
        event = dict(event, _archived=round(time.time(), 3))
        self.buffer.append(json.dumps(event, separators=(",", ":"), default=str))

    def flush(self) -> int:
        """Write what is buffered; return the number of lines written."""
        if not self.buffer:
            return 0
        now = datetime.now(UTC)
        body = "\n".join(self.buffer) + "\n"
        n = len(self.buffer)
        if self.target.startswith("s3://"):
            from opsbook.aws.session import boundary

            bucket, prefix = _split_s3(self.target)
            self._seq += 1
            day = f"{prefix + '/' if prefix else ''}events-{now:%Y-%m-%d}"
            key = f"{day}/{now:%Y%m%dT%H%M%S}-{self._seq:05d}.jsonl"
            with boundary(f"writing the events archive to s3://{bucket}/{key}"):
                self.s3.put_object(
                    Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson"
                )
            self.objects.append(f"s3://{bucket}/{key}")
        else:
            path = Path(self.target)
            if path.suffix != ".jsonl":
                path = path / f"events-{now:%Y-%m-%d}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(body)
            if str(path) not in self.objects:
                self.objects.append(str(path))
        self.buffer.clear()
        self.written += n
        return n


def archive_events(
    output: str,
    api: k8s.ApiClient | None = None,
    namespace: str | None = None,
    duration: float | None = None,
    flush_every: float = 30.0,
    stop: threading.Event | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    s3: Any = None,
) -> Sink:
    """Watch events and append them to ``output`` until ``duration`` seconds pass or ``stop`` is set.

    The watch starts with the events the API server still has (so the archive overlaps the last
    hour) and resumes from the last resourceVersion after a timeout; a ``410 Gone`` re-lists.

    Args:
        output: directory, ``.jsonl`` file or ``s3://bucket/prefix``.
        api: Kubernetes client (default: the configured cluster).
        namespace: only this namespace (default: all).
        duration: seconds to run (None: until ``stop`` is set or Ctrl-C).
        flush_every: seconds between writes.
        stop: an Event that ends the watch when set.
        on_event: called with each archived event (progress display).
        s3: an S3 client for ``s3://`` outputs (default: the configured one).

    Returns:
        The sink: ``written`` lines and the ``objects`` (files or S3 keys) written.
    """
    from opsbook.k8s.client import api_client, boundary

    if duration is not None and duration <= 0:
        raise BadInput(f"--duration {duration} must be > 0 seconds (or omitted to run until Ctrl-C)")
    sink = Sink(output, s3=s3)
    api = api or api_client()
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + duration if duration else None
    last_flush = time.monotonic()
    rv: str | None = None
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            remaining = deadline - time.monotonic() if deadline else 60.0
            if remaining <= 0:
                break
            w = watch.Watch()  # type: ignore[no-untyped-call]
            kwargs: dict[str, Any] = {
                "timeout_seconds": max(1, int(min(remaining, flush_every, 60))),
                "allow_watch_bookmarks": True,
            }
            if rv:
                kwargs["resource_version"] = rv
            fn = core.list_namespaced_event if namespace else core.list_event_for_all_namespaces
            args = (namespace,) if namespace else ()
            try:
                with boundary("watching events", api):
                    for item in w.stream(fn, *args, **kwargs):  # type: ignore[no-untyped-call]
                        raw = item.get("raw_object") or api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
                            item["object"]
                        )
                        if item["type"] == "BOOKMARK":
                            rv = (raw.get("metadata") or {}).get("resourceVersion") or rv
                            continue
                        d = dict(raw)
                        d.setdefault("apiVersion", "v1")
                        d.setdefault("kind", "Event")
                        rv = d.get("metadata", {}).get("resourceVersion") or rv
                        if item["type"] in ("ADDED", "MODIFIED"):
                            sink.add(d)
                            if on_event:
                                on_event(d)
                        if stop.is_set() or (deadline and time.monotonic() >= deadline):
                            w.stop()  # type: ignore[no-untyped-call]
                            break
                        if time.monotonic() - last_flush >= flush_every:
                            sink.flush()
                            last_flush = time.monotonic()
            except OpsbookError as e:
                cause = e.__cause__
                if isinstance(cause, ApiException) and cause.status == 410:
                    log.info("events watch expired (410 Gone); listing again")
                    rv = None
                    continue
                raise
            if time.monotonic() - last_flush >= flush_every:
                sink.flush()
                last_flush = time.monotonic()
    except KeyboardInterrupt:
        log.info("events archive interrupted; flushing")
    finally:
        sink.flush()
    return sink


def _lines_local(path: Path) -> Iterator[str]:
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz")))
    )
    for f in files:
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            yield from fh


def _lines_s3(url: str, s3: Any, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[str]:
    from opsbook.aws.session import boundary

    bucket, prefix = _split_s3(url)
    days = {
        f"events-{d:%Y-%m-%d}"
        for d in pd.date_range(
            start.normalize() - timedelta(days=1), end.normalize() + timedelta(days=1), freq="D"
        )
    }
    with boundary(f"reading the events archive {url}"):
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
        ):
            for o in page.get("Contents", []):
                key = o["Key"]
                if not key.endswith((".jsonl", ".jsonl.gz")) or not any(d in key for d in days):
                    continue
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                if key.endswith(".gz"):
                    body = gzip.decompress(body)
                yield from body.decode().splitlines()


def read_archive(
    source: str,
    start: pd.Timestamp | datetime,
    end: pd.Timestamp | datetime,
    s3: Any = None,
    slack: timedelta = timedelta(hours=1),
) -> list[dict[str, Any]]:
    """Events from an archive whose time (DESIGN.md fallback) is within ``[start - slack, end]``.

    ``slack`` keeps events that began before the window but were still repeating in it.

    Returns:
        Raw event dicts (normalise with :func:`opsbook.k8s.events.normalise_events`).

    Raises:
        BadInput: the local path does not exist.
    """
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    if source.startswith("s3://"):
        if s3 is None:
            from opsbook.aws.session import client

            s3 = client("s3")
        lines: Iterator[str] = _lines_s3(source, s3, start_ts, end_ts)
    else:
        path = Path(source)
        if not path.exists():
            raise BadInput(
                f"events archive {source} does not exist: give the --output of `opsbook events archive`"
            )
        lines = _lines_local(path)
    lo, hi = (start_ts - slack).isoformat(), end_ts.isoformat()
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except ValueError:
            log.warning("skipping a malformed archive line: %.80s", line)
            continue
        series = d.get("series") or {}
        when = (
            d.get("eventTime")
            or series.get("lastObservedTime")
            or d.get("lastTimestamp")
            or d.get("deprecatedLastTimestamp")
            or (d.get("metadata") or {}).get("creationTimestamp")
        )
        if when is None:
            continue
        t = pd.Timestamp(when)
        t = t.tz_localize("UTC") if t.tzinfo is None else t
        if pd.Timestamp(lo) <= t <= pd.Timestamp(hi):
            out.append(d)
    return out
