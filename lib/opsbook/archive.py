"""An events archive: watch Kubernetes events and append them as JSON lines, locally or to S3.

The API server keeps events only ``--event-ttl`` (1 h by default), so a
post-mortem written the next morning finds nothing. ``opsbook events archive``
(:func:`archive_events`) watches core/v1 events (raw JSON: ``series``, ``eventTime``,
``count``; kubernetes-client's events.k8s.io/v1 model rejects null ``eventTime``) and appends every
version of every event once, one JSON object per line:

- a local path: ``<dir>/events-YYYY-MM-DD.jsonl`` (one file per UTC day), or the
  file itself when the path ends in ``.jsonl``;
- ``s3://bucket/prefix``: S3 objects cannot be appended to, so the archive writes
  one object per flush, ``<prefix>/events-YYYY-MM-DD/<timestamp>-<seq>.jsonl``; a flush happens
  every ``flush_every`` seconds or when ``max_chunk_lines`` lines / 1 MiB are buffered, so memory
  stays bounded.

Each line is the event as the API returns it plus ``"_archived"`` (epoch seconds when it was
written), or a gap marker (``kind: OpsbookArchiveGap``, see :mod:`opsbook.archive_state`).

It survives what a control plane does to it: a refused or reset connection, a 5xx or 429 is
retried with exponential backoff capped at ``max_backoff`` seconds (each retry logged); the watch
resumes from the last resourceVersion; ``410 Gone`` re-lists and records a gap marker. It survives
its own ``kill -9``: the high-water mark (:class:`~opsbook.archive_state.HighWater`: resume
resourceVersion, dedupe keys, where the archive ended) is saved beside the archive after every
flush, and on start the lines written after that checkpoint are read back, so nothing is lost or
written twice. :func:`read_archive` reads a window back; :func:`read_gaps` / :func:`gap_notes`
say where the evidence has holes.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pandas as pd
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from opsbook.archive_state import HighWater, gap_marker, is_gap
from opsbook.aws.s3url import is_s3, split_s3
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import ApiError, BadInput, Gone
from opsbook.k8s import events as k8s_events
from opsbook.k8s.client import api_client, continue_kwargs, pages
from opsbook.k8s.client import boundary as k8s_boundary
from opsbook.redact import redact_text, secret_values

log = logging.getLogger(__name__)

STATE_NAME = ".opsbook-archive-state.json"
S3_STATE_NAME = "_archive-state.json"


def _dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"), default=str)


@dataclass
class Sink:
    """Where archived lines go (local path or ``s3://bucket/prefix``); buffers, flushes, checkpoints.

    ``position`` is where the archive ends after the last flush (``{"file", "offset"}`` locally,
    ``{"key", "seq"}`` in S3): the high-water mark records it, :meth:`roll_forward` reads past it.
    """

    target: str
    s3: Any = None
    max_lines: int = 1000
    max_bytes: int = 1 << 20
    buffer: list[str] = field(default_factory=list)
    buffered_bytes: int = 0
    written: int = 0
    gaps: int = 0
    objects: list[str] = field(default_factory=list)
    position: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=secret_values, repr=False)  # values of secret-named env vars
    _lock: IO[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if is_s3(self.target):
            split_s3(self.target)
            if self.s3 is None:
                self.s3 = aws_client("s3")
        elif not self.target:
            raise BadInput("give an --output: a directory, a .jsonl file or s3://bucket/prefix")

    @property
    def is_s3(self) -> bool:
        """Whether the archive is in S3."""
        return is_s3(self.target)

    def _append(self, line: str) -> bool:
        self.buffer.append(line)
        self.buffered_bytes += len(line) + 1
        return len(self.buffer) >= self.max_lines or self.buffered_bytes >= self.max_bytes

    def add(self, event: dict[str, Any]) -> bool:
        """Queue one event (its message redacted); True when the buffer is full and should be flushed now."""
        self.written += 1
        clean = {k: redact_text(v, self.secrets) if k in ("message", "note") and isinstance(v, str) else v
                 for k, v in event.items()}
        return self._append(_dumps(dict(clean, _archived=round(time.time(), 3))))

    def add_gap(self, marker: dict[str, Any]) -> None:
        """Queue a gap marker line."""
        self.gaps += 1
        log.warning(
            "events archive gap %s → %s (%s, lost=%s)",
            marker["from"],
            marker["to"],
            marker["reason"],
            marker["lost"],
        )
        self._append(_dumps(dict(marker, _archived=round(time.time(), 3))))

    # -- local layout ---------------------------------------------------------------------------
    def _local_file(self, now: datetime) -> Path:
        path = Path(self.target)
        return path if path.suffix == ".jsonl" else path / f"events-{now:%Y-%m-%d}.jsonl"

    def _local_state(self) -> Path:
        path = Path(self.target)
        return path.with_name(path.name + ".state.json") if path.suffix == ".jsonl" else path / STATE_NAME

    # -- S3 layout --------------------------------------------------------------------------------
    def _s3_state(self) -> tuple[str, str]:
        bucket, prefix = split_s3(self.target)
        return bucket, f"{prefix}/{S3_STATE_NAME}" if prefix else S3_STATE_NAME

    def flush(self) -> int:
        """Write what is buffered as one append (local) or one object (S3); return lines written."""
        if not self.buffer:
            return 0
        now = datetime.now(UTC)
        body = "\n".join(self.buffer) + "\n"
        n = len(self.buffer)
        if self.is_s3:
            bucket, prefix = split_s3(self.target)
            seq = int(self.position.get("seq", 0)) + 1
            day = f"{prefix + '/' if prefix else ''}events-{now:%Y-%m-%d}"
            key = f"{day}/{now:%Y%m%dT%H%M%S}-{seq:08d}.jsonl"
            with boundary(f"writing the events archive to s3://{bucket}/{key}"):
                self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson")
            self.position = {"key": key, "seq": seq}
            self.objects.append(f"s3://{bucket}/{key}")
        else:
            path = self._local_file(now)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as f:
                f.write(body.encode())
                offset = f.tell()
            self.position = {"file": str(path), "offset": offset}
            if str(path) not in self.objects:
                self.objects.append(str(path))
        self.buffer.clear()
        self.buffered_bytes = 0
        return n

    def lock(self) -> None:
        """Refuse a second writer of a local archive (S3: the Deployment runs one replica, Recreate).

        Raises:
            BadInput: another process archives to the same place.
        """
        if self.is_s3:
            return
        path = self._local_state().with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = path.open("a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise BadInput(
                f"{self.target} is being archived by {holder}: one archiver per archive (two would "
                "write every event twice). Stop it, or give another --output."
            ) from e
        self._lock.truncate(0)
        self._lock.write(f"pid {os.getpid()}\n")
        self._lock.flush()

    def unlock(self) -> None:
        """Release :meth:`lock`."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def load_state(self) -> HighWater | None:
        """The high-water mark saved beside the archive, or None for a new archive."""
        if self.is_s3:
            bucket, key = self._s3_state()
            with boundary(f"reading the archive state s3://{bucket}/{key}"):
                try:
                    body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                except self.s3.exceptions.NoSuchKey:
                    return None
        else:
            path = self._local_state()
            if not path.exists():
                return None
            body = path.read_bytes()
        try:
            return HighWater.from_json(json.loads(body))
        except ValueError:
            log.warning("archive state of %s is unreadable; starting without it", self.target)
            return None

    def save_state(self, hw: HighWater) -> None:
        """Save the high-water mark (atomically: a crash leaves the old or the new one)."""
        body = json.dumps(hw.to_json(), separators=(",", ":")).encode()
        if self.is_s3:
            bucket, key = self._s3_state()
            with boundary(f"writing the archive state s3://{bucket}/{key}"):
                self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
            return
        path = self._local_state()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)

    def roll_forward(self, hw: HighWater) -> tuple[int, float | None]:
        """Read the lines written after ``hw.position`` into ``hw`` (their keys count as written).

        Without a position (no state, or a state saved before the first flush) the files or objects
        of the last two UTC days are read. A torn last line (a crash in the middle of a write) is cut
        off. Sets :attr:`position` to the end of the archive.

        Returns:
            (lines read, ``_archived`` time of the newest line or None).
        """
        self.position = dict(hw.position)
        lines = self._s3_tail(hw) if self.is_s3 else self._local_tail(hw)
        n, newest = 0, None
        for line in lines:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            hw.remember(d)
            n += 1
            newest = max(newest or 0.0, float(d.get("_archived") or 0.0)) or newest
        return n, newest

    def _local_tail(self, hw: HighWater) -> Iterator[str]:
        path = Path(self.target)
        since = f"events-{datetime.now(UTC) - timedelta(days=1):%Y-%m-%d}.jsonl"
        if path.suffix == ".jsonl":
            files = [path] if path.exists() else []
        else:
            files = sorted(path.glob("events-*.jsonl")) if path.is_dir() else []
        start_file, offset = hw.position.get("file"), int(hw.position.get("offset", 0))
        if start_file:
            files = [f for f in files if str(f) == start_file or f.name > Path(start_file).name]
        elif path.suffix != ".jsonl":
            files = [f for f in files if f.name >= since]
        for f in files:
            skip = offset if str(f) == start_file else 0
            with f.open("r+b") as fh:
                fh.seek(skip)
                good = skip
                for raw in iter(fh.readline, b""):
                    if not raw.endswith(b"\n"):
                        log.warning("cutting a torn last line (%d bytes) off %s", len(raw), f)
                        fh.truncate(good)
                        break
                    good += len(raw)
                    yield raw.decode("utf-8", errors="replace")
            self.position = {"file": str(f), "offset": good}

    def _s3_tail(self, hw: HighWater) -> Iterator[str]:
        bucket, prefix = split_s3(self.target)
        base = f"{prefix}/" if prefix else ""
        after = hw.position.get("key") or f"{base}events-{datetime.now(UTC) - timedelta(days=1):%Y-%m-%d}"
        with boundary(f"reading the tail of the events archive {self.target}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, StartAfter=after):
                for o in page.get("Contents", []):
                    key = o["Key"]
                    if not key.endswith(".jsonl") or not key[len(base) :].startswith("events-"):
                        continue
                    body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
                    yield from body.splitlines()
                    try:
                        seq = int(key.rsplit("-", 1)[1].split(".")[0])
                    except (IndexError, ValueError):
                        seq = 0
                    self.position = {"key": key, "seq": max(seq, int(self.position.get("seq", 0)))}


class _Gone(Exception):
    """The resourceVersion is too old (410 Gone): list again."""


class _Transient(Exception):
    """The API server is down, restarting or overloaded: back off and retry."""


def _classify(e: BaseException, what: str, api: k8s.ApiClient) -> Exception:
    """Map an error of the watch/list to _Gone, _Transient, or the converted opsbook error to raise."""
    if isinstance(e, (urllib3.exceptions.HTTPError, OSError)):
        cause = getattr(e, "reason", None) or e  # MaxRetryError: the connection error inside
        return _Transient(f"{what}: {cause.__class__.__name__}: {cause!s:.200}")
    try:
        with k8s_boundary(what, api):
            raise e
    except Gone as converted:
        return _Gone(str(converted))
    except ApiError as converted:  # 0: a TLS error (a restart mid-handshake)
        if converted.status in (0, 429, 500, 502, 503, 504):
            return _Transient(str(converted))
        return converted
    except Exception as converted:  # the converted error is returned, to be raised by the caller
        return converted
    return RuntimeError("unreachable")  # pragma: no cover


def _touch(path: str | None) -> None:
    if path:
        Path(path).touch()


def archive_events(
    output: str,
    api: k8s.ApiClient | None = None,
    namespace: str | None = None,
    duration: float | None = None,
    flush_every: float = 30.0,
    stop: threading.Event | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    s3: Any = None,
    max_backoff: float = 10.0,
    event_ttl: float = 3600.0,
    max_chunk_lines: int = 1000,
    heartbeat: str | None = None,
) -> Sink:
    """Watch events and append each version once to ``output`` until ``duration`` or ``stop``.

    A new archive starts with the events the API server still has (the last ``event_ttl``). An
    existing one resumes from its high-water mark: the watch continues from the saved
    resourceVersion (a gap marker with ``lost: false`` records the downtime) or, when that is too
    old, lists again (a gap marker with ``lost: true``: events created and expired meanwhile, and
    intermediate counts, may be missing).

    Args:
        output: directory, ``.jsonl`` file or ``s3://bucket/prefix``.
        api: Kubernetes client (default: the configured cluster).
        namespace: only this namespace (default: all).
        duration: seconds to run (None: until ``stop`` is set or Ctrl-C/SIGTERM).
        flush_every: seconds between writes and checkpoints (also the watch timeout).
        stop: an Event that ends the watch when set.
        on_event: called with each archived event (progress display).
        s3: an S3 client for ``s3://`` outputs (default: the configured one).
        max_backoff: cap of the exponential backoff between reconnects, seconds.
        event_ttl: the API server's ``--event-ttl``; dedupe keys are kept twice as long.
        max_chunk_lines: flush (one S3 object) at this many buffered lines.
        heartbeat: file touched on every pass of the watch loop (liveness probe of the Deployment).

    Returns:
        The sink: ``written`` events, ``gaps`` markers and the ``objects`` (files or S3 keys) written.
    """
    if duration is not None and duration <= 0:
        raise BadInput(f"--duration {duration} must be > 0 seconds (or omitted to run until Ctrl-C)")
    sink = Sink(output, s3=s3, max_lines=max_chunk_lines)
    sink.lock()
    try:
        return _archive(sink, api, namespace, duration, flush_every, stop, on_event, max_backoff, event_ttl, heartbeat)
    finally:
        sink.unlock()


def _archive(
    sink: Sink,
    api: k8s.ApiClient | None,
    namespace: str | None,
    duration: float | None,
    flush_every: float,
    stop: threading.Event | None,
    on_event: Callable[[dict[str, Any]], None] | None,
    max_backoff: float,
    event_ttl: float,
    heartbeat: str | None,
) -> Sink:
    """The watch loop of :func:`archive_events` (the sink is locked)."""
    api = api or api_client()
    core = k8s.CoreV1Api(api)
    fn = core.list_namespaced_event if namespace else core.list_event_for_all_namespaces
    args: tuple[str, ...] = (namespace,) if namespace else ()
    stop = stop or threading.Event()
    deadline = time.monotonic() + duration if duration else None

    saved = sink.load_state()
    hw = saved or HighWater()
    rolled, newest = sink.roll_forward(hw)
    if rolled:
        log.info("events archive: %d lines written after the last checkpoint read back", rolled)
    # (start, reason) of a stretch in which events were not being archived
    pending: tuple[float, str] | None = None
    if saved is not None and (hw.alive or newest):
        pending = (max(hw.alive or 0.0, newest or 0.0), "archiver not running")
    elif newest is not None:
        pending = (newest, "archiver not running (no high-water mark)")
    last_contact = time.time()
    last_checkpoint = time.monotonic()
    attempt = 0

    def offer(obj: dict[str, Any]) -> None:
        d = dict(obj)
        d.setdefault("apiVersion", "v1")
        d.setdefault("kind", "Event")
        if hw.admit(d, time.time()):
            if sink.add(d):
                sink.flush()
            if on_event:
                on_event(d)

    def checkpoint() -> None:
        nonlocal last_checkpoint
        sink.flush()
        hw.position = dict(sink.position)
        if pending is None:
            hw.alive = time.time()
        hw.prune(time.time(), 2 * event_ttl)
        sink.save_state(hw)
        last_checkpoint = time.monotonic()

    def time_left() -> float:
        return deadline - time.monotonic() if deadline else 60.0

    def relist() -> str:
        """List every event (pages of 500) through the dedupe; return the list's resourceVersion."""
        list_rv = ""
        for page in pages(lambda token: json.loads(
                fn(*args, **continue_kwargs(token, 500, _preload_content=False, _request_timeout=(10, 60))).data)):
            list_rv = (page.get("metadata") or {}).get("resourceVersion") or list_rv
            for item in page.get("items") or []:
                offer(item)
        return list_rv

    def watch_once() -> None:
        timeout = max(1, int(min(time_left(), flush_every, 60)))
        resp = fn(
            *args,
            watch=True,
            resource_version=hw.rv,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _preload_content=False,
            _request_timeout=(10, timeout + 15),
        )
        try:
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                ev = json.loads(line)
                typ, obj = ev.get("type"), ev.get("object") or {}
                if typ == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        raise _Gone(str(obj.get("message")))
                    raise ApiException(status=code, reason=f"{obj.get('reason')}: {obj.get('message')}")
                if typ in ("ADDED", "MODIFIED"):
                    offer(obj)
                hw.rv = (obj.get("metadata") or {}).get("resourceVersion") or hw.rv
                if stop.is_set() or time_left() <= 0:
                    break
                if time.monotonic() - last_checkpoint >= flush_every:
                    checkpoint()
        finally:
            resp.close()
            resp.release_conn()

    try:
        while not stop.is_set() and time_left() > 0:
            _touch(heartbeat)
            what = "listing events" if hw.rv is None else "watching events"
            try:
                if hw.rv is None:
                    listed_at = time.time()
                    hw.rv = relist()
                    if pending is not None:
                        sink.add_gap(
                            gap_marker(
                                pending[0],
                                listed_at,
                                f"{pending[1]}; listed again",
                                lost=True,
                                detail="the watch could not resume, so events that were created and "
                                "expired in between, and intermediate counts of repeated events, may "
                                "be missing",
                            )
                        )
                    pending = None
                    checkpoint()
                else:
                    rv = hw.rv
                    watch_once()
                    if pending is not None:
                        sink.add_gap(
                            gap_marker(
                                pending[0],
                                time.time(),
                                pending[1],
                                lost=False,
                                detail=f"the watch resumed from resourceVersion {rv}: nothing missed",
                            )
                        )
                        pending = None
                        checkpoint()
                attempt = 0
                last_contact = time.time()
            except _Gone as e:
                log.warning("events watch from resourceVersion %s expired (410 Gone: %s); listing again", hw.rv, e)
                pending = pending or (last_contact, "watch expired (410 Gone)")
                hw.rv = None
            except Exception as e:  # classified below: retried, listed again, or raised
                err = _classify(e, what, api)
                if isinstance(err, _Gone):
                    log.warning("%s: 410 Gone (%s); listing again", what, err)
                    pending = pending or (last_contact, "watch expired (410 Gone)")
                    hw.rv = None
                    continue
                if not isinstance(err, _Transient):
                    raise err from e
                pending = pending or (last_contact, "API server unreachable")
                attempt += 1
                delay = min(max_backoff, 0.5 * 2**attempt) * random.uniform(0.75, 1.0)
                log.warning("%s; retry %d in %.1f s", err, attempt, delay)
                stop.wait(max(0.0, min(delay, time_left())))
            if time.monotonic() - last_checkpoint >= flush_every:
                checkpoint()
    except KeyboardInterrupt:
        log.info("events archive interrupted; flushing")
    finally:
        checkpoint()
    return sink


def _lines_local(path: Path) -> Iterator[str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz")))
    for f in files:
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            yield from fh


def _lines_s3(url: str, s3: Any, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[str]:
    bucket, prefix = split_s3(url)
    days = {
        f"events-{d:%Y-%m-%d}"
        for d in pd.date_range(start.normalize() - timedelta(days=1), end.normalize() + timedelta(days=1), freq="D")
    }
    with boundary(f"reading the events archive {url}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
            for o in page.get("Contents", []):
                key = o["Key"]
                if not key.endswith((".jsonl", ".jsonl.gz")) or not any(d in key for d in days):
                    continue
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                if key.endswith(".gz"):
                    body = gzip.decompress(body)
                yield from body.decode().splitlines()


def _records(source: str, start: pd.Timestamp, end: pd.Timestamp, s3: Any) -> Iterator[dict[str, Any]]:
    """Every parsed line of the archive files/objects that may hold ``[start, end]``."""
    if is_s3(source):
        if s3 is None:
            s3 = aws_client("s3")
        lines: Iterator[str] = _lines_s3(source, s3, start, end)
    else:
        path = Path(source)
        if not path.exists():
            raise BadInput(f"events archive {source} does not exist: give the --output of `opsbook events archive`")
        lines = _lines_local(path)
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except ValueError:
            log.warning("skipping a malformed archive line: %.80s", line)


def _utc(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def read_archive(
    source: str,
    start: pd.Timestamp | datetime,
    end: pd.Timestamp | datetime,
    s3: Any = None,
    slack: timedelta = timedelta(hours=1),
) -> list[dict[str, Any]]:
    """Events from an archive whose time (docs/design.md, "Event times") is within ``[start - slack, end]``.

    ``slack`` keeps events that began before the window but were still repeating in it. Gap
    markers are not events: read them with :func:`read_gaps`.

    Returns:
        Raw event dicts (normalise with :func:`opsbook.k8s.events.normalise_events`).

    Raises:
        BadInput: the local path does not exist.
    """
    start_ts, end_ts = _utc(start), _utc(end)
    lo, hi = start_ts - slack, end_ts
    out = []
    for d in _records(source, start_ts, end_ts, s3):
        if is_gap(d):
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
        if lo <= _utc(when) <= hi:
            out.append(d)
    return out


def read_gaps(
    source: str, start: pd.Timestamp | datetime, end: pd.Timestamp | datetime, s3: Any = None
) -> list[dict[str, Any]]:
    """Gap markers of an archive that overlap ``[start, end]``, oldest first.

    Returns:
        Marker dicts (:func:`opsbook.archive_state.gap_marker`): ``from``, ``to``, ``seconds``,
        ``reason``, ``lost`` (True: events of that stretch may be missing), ``detail``.
    """
    start_ts, end_ts = _utc(start), _utc(end)
    gaps = [
        d
        for d in _records(source, start_ts, end_ts, s3)
        if is_gap(d) and _utc(d["from"]) <= end_ts and _utc(d["to"]) >= start_ts
    ]
    return sorted(gaps, key=lambda d: str(d["from"]))


def gap_notes(gaps: list[dict[str, Any]], source: str) -> list[str]:
    """One note per gap that may have lost events (for collect_events and the post-mortem)."""
    return [
        f"the event evidence has a gap from {g['from']} to {g['to']} ({g['seconds']:.0f} s, "
        f"{g['reason']}): events of that stretch may be missing from the archive {source}"
        for g in gaps
        if g.get("lost")
    ]


def collect_events(
    start: pd.Timestamp,
    end: pd.Timestamp,
    api: k8s.ApiClient | None = None,
    namespaces: list[str] | None = None,
    archive: str | None = None,
    live: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Events of the window from the API server and, if given, an archive (local path or s3://).

    Args:
        start: window start (UTC).
        end: window end (UTC).
        api: Kubernetes client (default: the configured cluster).
        namespaces: only these namespaces (events of cluster-scoped objects are always kept).
        archive: an ``opsbook events archive`` output to read older events from.
        live: also read the API server (False: the archive only, e.g. offline).

    Returns:
        (events frame as :func:`opsbook.k8s.events.normalise_events`, notes about sources that were unavailable).
    """
    notes: list[str] = []
    raw: list[dict[str, Any]] = []
    if live:
        got, n = k8s_events.list_events(api)
        raw.extend(got)
        notes.extend(n)
    if archive:
        archived = read_archive(archive, start, end)
        raw.extend(archived)
        notes.append(f"{len(archived)} events read from the archive {archive}")
        notes.extend(gap_notes(read_gaps(archive, start, end), archive))
    df = k8s_events.in_window(k8s_events.normalise_events(raw), start, end)
    if namespaces:
        df = df[df["namespace"].isin(namespaces) | (df["namespace"] == "") | (df["kind"] == "Node")]
        df = df.reset_index(drop=True)
    if not len(df):
        oldest = "the last hour" if live else "nothing"
        notes.append(f"no events in the window (the API server keeps {oldest}; use `opsbook events archive`)")
    return df, notes
