"""The events archive's memory: which event versions are written, where to resume, what is missing.

Pure (no I/O): :mod:`opsbook.archive` loads and saves a :class:`HighWater` as JSON beside the
archive (``.opsbook-archive-state.json`` in a local directory, ``<file>.state.json`` beside a
``.jsonl`` file, ``<prefix>/_archive-state.json`` in S3).

- **Dedupe**: an event version is identified by ``uid`` + ``count`` + ``series.count``
  (:func:`event_key`). A re-list, a resumed watch that replays from an older resourceVersion, or a
  restart that rolls the archive tail forward offers the same versions again; :meth:`HighWater.admit`
  lets each through once. Keys are forgotten after ``keep_s`` (twice the API server's event TTL by
  default): an unchanged event older than its TTL is gone from the API server, so it cannot come back.
- **Resume**: ``rv`` is a resourceVersion up to which every event is already *written* (the archive
  saves it only right after a flush, and never in the middle of a list), so resuming the watch from
  it loses nothing; ``position`` is where the archive ended at that checkpoint, so lines written
  after it (a ``kill -9`` between the write and the checkpoint) are read back, not written again.
- **Gaps**: :func:`gap_marker` is the line written when events may be missing (a re-list after
  ``410 Gone`` or without a high-water mark) or when the archiver was down (``lost: false`` when the
  watch resumed from ``rv``, so nothing was missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GAP_KIND = "OpsbookArchiveGap"
GAP_API_VERSION = "opsbook.dev/v1"
STATE_VERSION = 1


def event_key(event: dict[str, Any]) -> str | None:
    """``uid/count/series.count`` of one event version, or None when it has no uid."""
    uid = (event.get("metadata") or {}).get("uid")
    if not uid:
        return None
    series = event.get("series") or {}
    return f"{uid}/{event.get('count') or 1}/{series.get('count') or 0}"


def is_gap(line: dict[str, Any]) -> bool:
    """Whether an archive line is a gap marker rather than an event."""
    return line.get("kind") == GAP_KIND


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def gap_marker(start: float, end: float, reason: str, lost: bool, detail: str = "") -> dict[str, Any]:
    """A gap marker line: events between ``start`` and ``end`` (epoch s) may be missing if ``lost``.

    Returns:
        ``{"apiVersion", "kind": "OpsbookArchiveGap", "from", "to", "seconds", "reason", "lost",
        "detail"}`` with ISO-8601 UTC times.
    """
    start = min(start, end)
    return {
        "apiVersion": GAP_API_VERSION,
        "kind": GAP_KIND,
        "from": _iso(start),
        "to": _iso(end),
        "seconds": round(end - start, 1),
        "reason": reason,
        "lost": lost,
        "detail": detail,
    }


@dataclass
class HighWater:
    """Resume point and dedupe memory of one archive.

    Attributes:
        rv: resourceVersion up to which every event is written (None: list first).
        alive: epoch seconds of the last checkpoint while the watch was healthy.
        seen: dedupe key → epoch seconds it was written.
        position: where the archive ended at the checkpoint (sink-specific: ``{"file", "offset"}``
            locally, ``{"key", "seq"}`` in S3).
    """

    rv: str | None = None
    alive: float | None = None
    seen: dict[str, float] = field(default_factory=dict)
    position: dict[str, Any] = field(default_factory=dict)

    def admit(self, event: dict[str, Any], now: float) -> bool:
        """True if this event version was not written yet (and remember it); False for a repeat."""
        key = event_key(event)
        if key is None:
            return True
        if key in self.seen:
            return False
        self.seen[key] = now
        return True

    def remember(self, line: dict[str, Any]) -> None:
        """Note an event line found in the archive (roll-forward after a crash)."""
        key = event_key(line)
        if key is not None and not is_gap(line):
            self.seen.setdefault(key, float(line.get("_archived") or 0.0))

    def prune(self, now: float, keep_s: float) -> int:
        """Forget keys written more than ``keep_s`` ago; return how many were forgotten."""
        old = [k for k, t in self.seen.items() if now - t > keep_s]
        for k in old:
            del self.seen[k]
        return len(old)

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-able dict."""
        return {
            "version": STATE_VERSION,
            "rv": self.rv,
            "alive": self.alive,
            "position": self.position,
            "seen": self.seen,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HighWater:
        """Read back :meth:`to_json` (unknown versions start afresh)."""
        if d.get("version") != STATE_VERSION:
            return cls()
        return cls(
            rv=d.get("rv"),
            alive=d.get("alive"),
            seen={str(k): float(v) for k, v in (d.get("seen") or {}).items()},
            position=dict(d.get("position") or {}),
        )
