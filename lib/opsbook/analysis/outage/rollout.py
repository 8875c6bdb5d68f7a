"""Crash loops and unready pods.

``rollout.crashloop`` / ``rollout.unready``: pods crash-looping or never ready shortly after a rollout;
``pod.crashloop``: a pod crash-looping since before the window (a standing problem, never a cause).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import Config, _finding, _fmt
from opsbook.report import POD_SUFFIX, object_id


def detect_crashloop_after_rollout(
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config(), history: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Pods crash-looping (BackOff, CrashLoopBackOff, restarts) within ``rollout_lookback`` of a rollout."""
    crash: list[tuple[str, Any, str]] = []  # (ns/pod, time, evidence)
    if len(events):
        bo = events[(events["reason"] == "BackOff") & (events["kind"] == "Pod")]
        bo = bo[bo["message"].str.contains("restarting failed container", na=False, regex=False)]
        crash += [(f"{r.namespace}/{r.name}", r.first_time, r.event) for r in bo.itertuples()]
    if len(evidence):
        pw = evidence[
            (evidence["source"] == "pod")
            & evidence["what"].isin(
                ["waiting CrashLoopBackOff", "restarts", "terminated Error", "terminated OOMKilled"]
            )
        ]
        crash += [(str(r.object)[4:], r.time, r.evidence) for r in pw.itertuples()]
    if not crash:
        return []
    return _after_rollout(
        crash, events, evidence, config, "rollout.crashloop", "crash-looping",
        "then read the logs of the new version", 65, history,
    )


def detect_unready_after_rollout(
    events: pd.DataFrame, evidence: pd.DataFrame, config: Config = Config(), history: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """New pods that never pass their readiness probe within ``rollout_lookback`` of a rollout.

    The team's failed MongoDB update: the new version starts but refuses to serve (e.g. an
    incompatible data format), so the probe fails and, with a Recreate strategy, nothing serves.
    """
    if not len(events):
        return []
    bad = events[(events["reason"] == "Unhealthy") & (events["kind"] == "Pod")]
    bad = bad[bad["message"].str.contains("Readiness probe failed", na=False, regex=False)]
    unready = [(f"{r.namespace}/{r.name}", r.first_time, r.event) for r in bad.itertuples()]
    return _after_rollout(
        unready, events, evidence, config, "rollout.unready", "failing readiness",
        "then check the new version's compatibility with its data (e.g. MongoDB featureCompatibilityVersion)",
        60,
        history,
    )


_SCALED_UP = re.compile(r"Scaled up replica set (?P<rs>\S+) (?:from \d+ )?to (?P<to>\d+)")


def rollout_times(events: pd.DataFrame, evidence: pd.DataFrame) -> pd.DataFrame:
    """When each ReplicaSet was rolled out, from the Deployment's own history.

    A rollout (or a rollback, or a re-roll to an earlier template, which reuse an old ReplicaSet) shows as
    the deployment controller's ``ScalingReplicaSet`` event "Scaled up replica set X ..." on the Deployment,
    as the ReplicaSet's creation, and as the controller's later change of the ReplicaSet's revision and
    replicas (:func:`opsbook.k8s.evidence.rollout_evidence`, ``scaled up`` rows).

    Returns:
        DataFrame with columns ``rs`` (``ns/name``), ``time``, ``deployment`` (``deployment/ns/name``),
        ``detail``, ``how`` (``ScalingReplicaSet``, ``created``, ``scaled up``).
    """
    recs: list[tuple[Any, ...]] = []
    details: dict[str, str] = {}
    owners: dict[str, str] = {}
    ro = evidence[evidence["source"] == "rollout"] if len(evidence) else evidence
    for r in ro.itertuples():
        what = str(r.what).removeprefix("ReplicaSet ")
        rs, _, how = what.partition(" ")
        ns = str(r.object).split("/")[1]
        details[f"{ns}/{rs}"] = str(r.detail)
        owners[f"{ns}/{rs}"] = str(r.object)
        recs.append((f"{ns}/{rs}", r.time, str(r.object), str(r.detail), how))
    if len(events):
        sc = events[(events["reason"] == "ScalingReplicaSet") & (events["kind"] == "Deployment")]
        for r in sc.itertuples():
            m = _SCALED_UP.search(str(r.message))
            if not m:
                continue
            key = f"{r.namespace}/{m['rs']}"
            owners.setdefault(key, object_id("Deployment", r.name, r.namespace))
            recs.append((key, r.first_time, object_id("Deployment", r.name, r.namespace),
                         details.get(key, str(r.message)), "ScalingReplicaSet"))
    df = pd.DataFrame(recs, columns=["rs", "time", "deployment", "detail", "how"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def _after_rollout(
    hits: list[tuple[str, Any, str]], events: pd.DataFrame, evidence: pd.DataFrame, config: Config,
    check: str, what: str, advice: str, base_score: int, history: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Findings for pods (``ns/pod``, time, evidence) whose ReplicaSet was rolled out shortly before.

    The rollout time is the earliest roll-out moment of that ReplicaSet (:func:`rollout_times`) within
    ``rollout_lookback`` before the first hit: a rollback to an old ReplicaSet counts from the moment it
    was scaled up again, not from its creation. ``history`` (evidence from before the window too) tells
    whether the ReplicaSet existed long before (a rollback).
    """
    if not hits:
        return []
    cdf = pd.DataFrame(hits, columns=["pod", "time", "evidence"])
    cdf["rs"] = cdf["pod"].str.replace(POD_SUFFIX, "", regex=True)
    times = rollout_times(events, evidence)
    created_at = rollout_times(events.iloc[:0], evidence if history is None else history)
    created_at = created_at[created_at["how"] == "created"]
    out = []
    for rs, g in cdf[cdf["rs"].isin(set(times["rs"]))].groupby("rs"):
        t_hit = g["time"].min()
        if pd.isna(t_hit):
            continue
        mine = times[
            (times["rs"] == rs) & (times["time"] <= t_hit) & (times["time"] >= t_hit - config.rollout_lookback)
        ]
        if mine.empty:
            continue
        first = mine.iloc[0]
        t_rollout, deploy, detail = first["time"], str(first["deployment"]), str(first["detail"])
        born = created_at[created_at["rs"] == rs]["time"]
        reused = bool((born < t_rollout - pd.Timedelta(seconds=5)).any())
        lag = (t_hit - t_rollout).total_seconds()
        parts = deploy.split("/")
        ns, name = parts[1], parts[-1]
        msg = (
            f"{g['pod'].nunique()} pod(s) of ReplicaSet {rs} {what} from {_fmt(t_hit)}, {lag:.0f} s "
            f"after the {'rollback/re-roll to an earlier ReplicaSet' if reused else 'rollout'} at "
            f"{_fmt(t_rollout)} ({detail}). Roll back: "
            f"`kubectl -n {ns} rollout undo deployment/{name}`, {advice}."
        )
        out.append(
            _finding(
                check,
                "high",
                t_rollout,
                deploy,
                msg,
                [f"kubectl -n {ns} rollout history deployment/{name}", *g["evidence"].head(3)],
                base_score + min(10, g["pod"].nunique()),
                replicaset=rs,
                rollout_at=t_rollout,
                rollout_seen_as=str(first["how"]),
                reused_replicaset=reused,
                first_crash=t_hit,
                pods=int(g["pod"].nunique()),
            )
        )
    return out


_CRASH_ROWS = ("waiting CrashLoopBackOff", "terminated Error", "terminated OOMKilled")


def detect_standing_crashloop(
    events: pd.DataFrame, evidence: pd.DataFrame, start: pd.Timestamp, skip_replicasets: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Pods crash-looping now whose first sign of crashing is older than the window: standing problems.

    The first sign is the earliest of the pod's ``BackOff`` events (all that were read, from before the
    window too) and its crash rows in the current state (``waiting CrashLoopBackOff`` dated by the last
    termination, else the pod's start; ``terminated Error``/``OOMKilled``). One finding per ReplicaSet
    (pods named ``<rs>-xxxxx``), ``data["standing"]``: it was broken before the incident began, so it is
    listed after the causes, never ranked above them. ReplicaSets in ``skip_replicasets`` (already
    explained by an in-window rollout) are left out.

    Args:
        events: normalised events, the whole history read (not only the window).
        evidence: current-state evidence rows (not only the window).
        start: window start.
        skip_replicasets: ``ns/rs`` already reported as ``rollout.crashloop``.
    """
    if not len(evidence):
        return []
    pods_ev = evidence[evidence["source"] == "pod"]
    looping = pods_ev[pods_ev["what"] == "waiting CrashLoopBackOff"]
    if looping.empty:
        return []
    names = {str(o).split("/", 1)[1] for o in looping["object"]}  # pod/ns/name -> ns/name
    # earlier pods of the same ReplicaSets count too: a crash-looping pod whose node died is replaced by one
    # that crash-loops just the same, and only the first pod's BackOff events date the problem
    looping_rs = {POD_SUFFIX.sub("", n) for n in names}
    signs: list[tuple[str, str, Any, str]] = []
    for r in pods_ev[pods_ev["what"].isin(_CRASH_ROWS)].itertuples():
        key = str(r.object).split("/", 1)[1]
        if (rs := POD_SUFFIX.sub("", key)) in looping_rs:
            signs.append((key, rs, r.time, str(r.evidence)))
    if len(events):
        bo = events[(events["reason"] == "BackOff") & (events["kind"] == "Pod")]
        for r in bo.itertuples():
            key = f"{r.namespace}/{r.name}"
            if (rs := POD_SUFFIX.sub("", key)) in looping_rs:
                first = r.first_time if not pd.isna(r.first_time) else r.time
                signs.append((key, rs, first, str(r.event)))
    df = pd.DataFrame(signs, columns=["pod", "rs", "time", "evidence"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    out = []
    for rs, g in df.dropna(subset=["time"]).groupby("rs", sort=True):
        since = g["time"].min()
        if rs in skip_replicasets or since >= start:
            continue
        ns, rs_name = str(rs).split("/", 1)
        pods = sorted(set(g["pod"]))
        first_pod = min(p for p in names if POD_SUFFIX.sub("", p) == rs).split("/", 1)[1]  # one looping now
        out.append(_finding(
            "pod.crashloop", "medium", since, object_id("Pod", first_pod, ns),
            f"Standing problem: {len(pods)} pod(s) of ReplicaSet {rs_name} in {ns} have been crash-looping since "
            f"at least {_fmt(since)}, before the window opened: it did not start this incident. Read "
            f"`kubectl -n {ns} logs {first_pod} --previous` when the incident is over.",
            [f"kubectl -n {ns} describe pod {first_pod}", *g.sort_values("time")["evidence"].head(2)],
            20, standing=True, replicaset=str(rs), since=since, pods=len(pods),
        ))
    return out
