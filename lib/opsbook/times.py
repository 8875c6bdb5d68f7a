"""The one ISO-8601 parser for timestamps people type (parameters, flags): naive means UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from opsbook.errors import BadInput

EXAMPLE = "2026-11-25T00:10:00Z"


def parse_time(value: str | datetime, where: str = "timestamp") -> datetime:
    """``value`` as an aware UTC datetime (a ``Z`` suffix, an offset, or none: UTC).

    Args:
        value: an ISO-8601 string, or a datetime (a pandas Timestamp too).
        where: how the error names the value, e.g. ``-p start`` or ``end``.

    Raises:
        BadInput: ``value`` is not an ISO-8601 timestamp.
    """
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as e:
            raise BadInput(f"{where}: {value!r} is not an ISO-8601 timestamp such as {EXAMPLE}.") from e
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
