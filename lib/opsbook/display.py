"""How tables and values read in a notebook and its HTML report.

Inside a Jupyter kernel, importing :mod:`opsbook` registers an HTML formatter for
pandas DataFrames (:func:`install`): no index column (a meaningful, named index
becomes a column), times to the second in UTC, full cell text (no ``...``), and
lists/dicts in cells written as words rather than Python reprs. The plain-text
form is untouched, so nbval's text comparisons and terminal use are unchanged.

:func:`plain` turns any JSON-like value into the text a person expects; the
report module uses it for recorded values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
MAX_ROWS = 500
LEFT_ALIGN = "<style>.opsbook-table td, .opsbook-table th { text-align: left; vertical-align: top; }</style>"


def format_time(value: datetime) -> str:
    """``2026-12-01 01:27:19 UTC`` (naive times are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def format_duration(value: timedelta) -> str:
    """``1h 02m 03s`` / ``4m 05s`` / ``7s``, to the second."""
    total = round(value.total_seconds())
    sign = "-" if total < 0 else ""
    h, rest = divmod(abs(total), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{sign}{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{sign}{m}m {s:02d}s"
    return f"{sign}{s}s"


def plain(value: Any) -> str:
    """A value as a person reads it: times to the second UTC, lists comma-joined, mappings as ``k: v``."""
    if value is None:
        return ""
    if _is_missing(value):
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if _is_pandas_timestamp(value):
        return format_time(value.to_pydatetime())
    if _is_pandas_timedelta(value):
        return format_duration(value.to_pytimedelta())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and ISO_TIME.match(value):
        try:
            return format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else f"{value:.3e}"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(value is pd.NaT) or (isinstance(value, float) and value != value)
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def _is_pandas_timestamp(value: Any) -> bool:
    return type(value).__name__ == "Timestamp" and hasattr(value, "to_pydatetime")


def _is_pandas_timedelta(value: Any) -> bool:
    return type(value).__name__ == "Timedelta" and hasattr(value, "to_pytimedelta")


def readable_frame(df: Any) -> Any:
    """A copy of ``df`` ready to show: meaningful index as columns, cells as text where pandas would repr."""
    import pandas as pd

    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(x) for x in c if str(x)) for c in out.columns]
    if not isinstance(out.index, pd.RangeIndex) and any(n is not None for n in out.index.names):
        out = out.reset_index()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
            out[col] = s.map(plain)
        elif s.dtype == object:
            out[col] = s.map(lambda v: v if isinstance(v, str) else plain(v))
    return out


def frame_html(df: Any) -> str:
    """The DataFrame as an HTML table without the index column, full text, times in UTC."""
    import pandas as pd

    out = readable_frame(df)
    if out.shape[1] == 0:  # pandas would draw an empty header row: say so in words instead
        return "<p><em>(nothing to show: no rows)</em></p>"
    with pd.option_context("display.max_colwidth", None):
        table: str = out.to_html(
            index=False, max_rows=MAX_ROWS, border=0, classes="dataframe opsbook-table", na_rep=""
        )
    note = ""
    table = LEFT_ALIGN + table  # JupyterLab right-aligns table cells; text reads better from the left
    if len(out) > MAX_ROWS:
        note = f"<p><em>{len(out)} rows; the first and last {MAX_ROWS // 2} are shown.</em></p>"
    return table + note


def series_html(s: Any) -> str:
    """A Series as a two-column table (its index is its labels)."""
    frame = s.to_frame(name=s.name if s.name is not None else "value")
    frame.index.name = frame.index.name or ""
    return frame_html(frame.reset_index())


def install(shell: Any = None) -> bool:
    """Register the HTML formatters in ``shell`` (default: the running IPython). True if installed."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython ships with ipykernel
            return False
        shell = get_ipython()
    if shell is None:
        return False
    import pandas as pd  # by class, not by name: pandas 3 reports both classes' __module__ as "pandas"

    fmt = shell.display_formatter.formatters["text/html"]
    fmt.for_type(pd.DataFrame, frame_html)
    fmt.for_type(pd.Series, series_html)
    return True
