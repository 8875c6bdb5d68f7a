"""Metric turning points (credits exhausted, a series growing), reused through an explicit :class:`MetricsCache`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from opsbook.report import ROW_COLUMNS, object_id


def _growth_onset(t: np.ndarray, v: np.ndarray, sustain: int = 3) -> tuple[Any, float, float] | None:
    n = len(v)
    if n < 2 * sustain:
        return None
    head = max(sustain, n // 10)
    base = float(np.median(v[:head]))
    peak = float(v.max())
    if not peak - base > max(0.5 * abs(base), 1e-9):
        return None
    above = v > base + 0.2 * (peak - base)
    run = np.convolve(above.astype(np.int8), np.ones(sustain, dtype=np.int8), mode="valid") == sustain
    idx = np.flatnonzero(run)
    if not len(idx):
        return None
    i = int(idx[0])
    return t[i], base, peak


def metric_milestones(
    metrics: pd.DataFrame, zero_balance: float = 0.5, cache: MetricsCache | None = None
) -> pd.DataFrame:
    """Timeline rows for metric turning points.

    - ``CPUCreditBalance exhausted`` (balance ≤ ``zero_balance``) per instance, with
      ``CPUUtilization flat at N %`` when the CPU is flat while the balance is zero;
    - ``<metric> growing`` for every non-AWS/EC2 series (the extra metrics) whose value rises
      sustainably above its starting level.

    Returns:
        Rows with ``time, source='metric', object='metric/<name>/<id>', what, detail, severity, evidence``.
    """
    cols = ROW_COLUMNS
    recs: list[tuple[Any, ...]] = []
    if metrics.empty:
        return pd.DataFrame(recs, columns=cols).astype({"time": "datetime64[ns, UTC]"})
    for ex in credit_exhaustion(metrics, zero_balance, cache).itertuples():
        recs.append(
            (
                ex.zero_at,
                "metric",
                object_id("Metric", f"CPUCreditBalance/{ex.id}"),
                "CPUCreditBalance exhausted",
                f"balance fell from {ex.balance_max:.0f} to {ex.balance_min:.1f} credits",
                "high",
                f"CloudWatch AWS/EC2 CPUCreditBalance InstanceId={ex.id}",
            )
        )
        if ex.cpu_flat:
            recs.append(
                (
                    ex.zero_at,
                    "metric",
                    object_id("Metric", f"CPUUtilization/{ex.id}"),
                    f"CPUUtilization flat at {ex.cpu_level:.0f}%",
                    f"p10-p90 {ex.cpu_p10:.1f}-{ex.cpu_p90:.1f}% while the balance was zero: throttled to "
                    "baseline",
                    "high",
                    f"CloudWatch AWS/EC2 CPUUtilization InstanceId={ex.id}",
                )
            )
    for g in growth(metrics, cache).itertuples():
        recs.append(
            (
                g.onset,
                "metric",
                object_id("Metric", f"{g.metric}/{g.id}"),
                f"{g.metric} growing",
                f"from {g.base:g} to {g.peak:g}",
                "high",
                f"CloudWatch {g.namespace} {g.metric} ({g.id})",
            )
        )
    df = pd.DataFrame(recs, columns=cols)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _series(df: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Order rows by series then time without reshuffling the frame.

    Returns:
        (the key columns of the first row of each series, times as int64 ns, values, start offset of
        each series in the ordered arrays).
    """
    if not len(df):
        e = np.array([], dtype="int64")
        return df[keys].iloc[:0], e, e.astype(float), e
    codes = df.groupby(keys, sort=False).ngroup().to_numpy()
    t = df["time"].to_numpy(dtype="datetime64[ns]").view("int64")
    order = np.lexsort((t, codes))
    codes, t, v = codes[order], t[order], df["value"].to_numpy(dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    heads = df[keys].iloc[order[starts]].reset_index(drop=True)
    return heads, t, v, starts


def _utc(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def growth(metrics: pd.DataFrame, cache: MetricsCache | None = None) -> pd.DataFrame:
    """Sustained growth onsets of the non-AWS/EC2 series.

    Returns:
        DataFrame with columns ``namespace, metric, id, onset, base, peak``.
    """
    return _cached(cache, "growth", metrics, len(metrics), lambda: _growth(metrics))


def _growth(metrics: pd.DataFrame) -> pd.DataFrame:
    cols = ["namespace", "metric", "id", "onset", "base", "peak"]
    heads, t, v, starts = _series(metrics[metrics["namespace"] != "AWS/EC2"], ["namespace", "metric", "id"])
    out = []
    ends = np.r_[starts[1:], len(v)]
    for k, (a, b) in enumerate(zip(starts, ends, strict=False)):
        r = _growth_onset(t[a:b], v[a:b])
        if r is not None:
            first = heads.iloc[k]
            out.append((first["namespace"], first["metric"], first["id"], _utc(r[0]), r[1], r[2]))
    return pd.DataFrame(out, columns=cols)


class MetricsCache:
    """What was computed from one metrics frame, reused while the caller asks about the very same frame.

    The timeline (:func:`metric_milestones`) and the detectors (``cpu.credits``, ``consumer.stalled``) need
    the same growth onsets and credit exhaustion: a caller that builds both passes one cache to both
    (:func:`opsbook.analysis.outage.run_detectors` makes its own when given none). An entry answers only
    for the same frame object with the same length and arguments; there is no module-global state.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[pd.DataFrame, Any, pd.DataFrame]] = {}

    def get(self, name: str, metrics: pd.DataFrame, key: Any, fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The last result of ``name`` for this very frame and key, else ``fn()`` (kept for next time)."""
        hit = self._last.get(name)
        if hit is not None and hit[0] is metrics and hit[1] == key:
            return hit[2]
        out = fn()
        self._last[name] = (metrics, key, out)
        return out

    def clear(self) -> None:
        """Forget everything (benchmarks measure cold runs)."""
        self._last.clear()


def _cached(
    cache: MetricsCache | None, name: str, metrics: pd.DataFrame, key: Any, fn: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    return fn() if cache is None else cache.get(name, metrics, key, fn)


def credit_exhaustion(
    metrics: pd.DataFrame, zero_balance: float = 0.5, cache: MetricsCache | None = None
) -> pd.DataFrame:
    """Instances whose CPUCreditBalance reached ≈0, with the CPU level while it stayed there.

    Returns:
        DataFrame with columns ``id, zero_at, zero_until, balance_max, balance_min, cpu_level, cpu_p10,
        cpu_p90, cpu_flat`` (flat: p90 − p10 ≤ max(2, 15 % of the median) percentage points).
    """
    return _cached(
        cache, "credits", metrics, (len(metrics), zero_balance), lambda: _credit_exhaustion(metrics, zero_balance)
    )


def _credit_exhaustion(metrics: pd.DataFrame, zero_balance: float) -> pd.DataFrame:
    cols = [
        "id",
        "zero_at",
        "zero_until",
        "balance_max",
        "balance_min",
        "cpu_level",
        "cpu_p10",
        "cpu_p90",
        "cpu_flat",
    ]
    ec2 = metrics[metrics["namespace"] == "AWS/EC2"]
    bal, bt, bv, bstarts = _series(ec2[ec2["metric"] == "CPUCreditBalance"], ["id"])
    if not len(bal):
        return pd.DataFrame([], columns=cols)
    cpu, ct, cv, cstarts = _series(ec2[ec2["metric"] == "CPUUtilization"], ["id"])
    cends = np.r_[cstarts[1:], len(cv)]
    cpu_at = {cpu["id"].iat[k]: (a, b) for k, (a, b) in enumerate(zip(cstarts, cends, strict=False))}
    out = []
    for k, (a, b) in enumerate(zip(bstarts, np.r_[bstarts[1:], len(bv)], strict=False)):
        v, t = bv[a:b], bt[a:b]
        zero = v <= zero_balance
        if not zero.any() or v.max() <= zero_balance:
            continue
        i = int(np.argmax(zero))
        j = i + int(np.argmin(zero[i:])) if not zero[i:].all() else len(v)
        zero_at, zero_until = t[i], t[j - 1]
        level = p10 = p90 = float("nan")
        flat = False
        iid = bal["id"].iat[k]
        if iid in cpu_at:
            ca, cb = cpu_at[iid]
            tt, vv = ct[ca:cb], cv[ca:cb]
            sel = vv[(tt >= zero_at) & (tt <= zero_until)]
            if len(sel) >= 3:
                level, p10, p90 = (float(x) for x in np.percentile(sel, [50, 10, 90]))
                flat = (p90 - p10) <= max(2.0, 0.15 * level) and level < 95
        out.append(
            (iid, _utc(zero_at), _utc(zero_until), float(v.max()), float(v.min()), level, p10, p90, flat)
        )
    return pd.DataFrame(out, columns=cols)


