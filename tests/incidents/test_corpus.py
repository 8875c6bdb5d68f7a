"""The scored incident corpus: every scenario of ``incident_scenarios`` on the sandbox, back to back.

The workloads (and the standing noise) are started once, at least two minutes before every live window;
each scenario opens its window, runs its script, analyses the window with the same library calls as the
outage-analysis notebook, checks the ranking, and resets the sandbox for the next one.

Checked per scenario: the rank-1 likely cause (check, object, start time within ±60 s), the checks that
must not rank above it, the further causes that must be found (ranked after it, by time), the standing
problems that must be listed as such; in the quiet window no likely cause at ``high`` or above.

The table (scenario, expected, ranked first, object ok, time ok, ranked second) is printed at the end;
it is written to ``docs/incident-corpus.md`` only when ``OPSBOOK_WRITE_DOCS=1`` is set.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from incident_scenarios import SCENARIOS, Ctx, Scenario, new_run_id, settle, start_workloads
from kubernetes import client as k8s

from opsbook.analysis import outage, postmortem
from opsbook.runbooks import outage_analysis as runbook
from opsbook.sandbox import Sandbox, drills

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.private_sandbox]
ROOT = Path(__file__).resolve().parents[2]
LEAD = dt.timedelta(minutes=2)  # workloads run at least this long before every live window
TOLERANCE = pd.Timedelta(seconds=60)
ROWS: dict[str, dict[str, Any]] = {}


class Corpus:
    def __init__(self, sb: Sandbox, api: k8s.ApiClient) -> None:
        self.sb, self.api = sb, api
        self.run_id = new_run_id()
        self.t_start = time.monotonic()
        self.workloads_at = dt.datetime.now(dt.UTC)
        counter = sb.dir / "corpus-runs"
        self.runs_before = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(self.runs_before + 1))


@pytest.fixture(scope="module")
def corpus(sandbox: Sandbox, api: k8s.ApiClient, request: pytest.FixtureRequest) -> Iterator[Corpus]:
    drills.reset(sandbox, api)
    c = Corpus(sandbox, api)
    start_workloads(sandbox, api)
    settle(sandbox, api)
    yield c
    elapsed = time.monotonic() - c.t_start
    drills.reset(sandbox, api)
    core = k8s.CoreV1Api(api)
    for ns in (drills.NAMESPACE, "legacy"):
        core.delete_namespace(ns)
    table = render_table(elapsed)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + table)
    else:
        print("\n" + table)
    if os.environ.get("OPSBOOK_WRITE_DOCS") == "1":
        (ROOT / "docs" / "incident-corpus.md").write_text(table)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and {drills.NAMESPACE, "legacy"} & {
        n.metadata.name for n in core.list_namespace().items
    }:
        time.sleep(0.5)


def analyse(start: dt.datetime, end: dt.datetime, extra: list[str], st: Any) -> tuple[pd.DataFrame, Any, Any, Any]:
    """The outage-analysis notebook's steps, through the same façade calls the notebook makes."""
    inc = runbook.window(start.isoformat(), end.isoformat(), 2, title="corpus", extra_metrics=extra,
                         instance_metrics=("CPUUtilization", "CPUCreditBalance", "CPUCreditUsage"), alerts={})
    events, _ = runbook.cluster_events(inc)
    state, _ = runbook.cluster_state()
    aws = runbook.aws_side(inc, st.cluster_name, st.region)
    cache = outage.MetricsCache()
    findings = runbook.likely_causes(inc, events, state, aws, node_monitor_grace_seconds=10, toleration_seconds=10,
                                     cache=cache)
    tl = runbook.story(inc, events, state, aws, collapse_seconds=5, cache=cache)
    return findings, inc, tl, events


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_incident(scenario: Scenario, corpus: Corpus) -> None:
    sb, api = corpus.sb, corpus.api
    st = sb.state()
    assert st is not None
    # history windows close before this sandbox (and anything earlier tests did on it) existed; on a kept
    # sandbox each corpus run goes 7 h further back, so CloudWatch never mixes two runs' series
    born = dt.datetime.fromtimestamp(st.started_at, dt.UTC) if st.started_at else corpus.workloads_at
    anchor = min(born, corpus.workloads_at) - dt.timedelta(minutes=1) - corpus.runs_before * dt.timedelta(hours=7)
    ctx = Ctx(sb, api, anchor=anchor, run_id=corpus.run_id)
    if scenario.window == "live":
        settle(sb, api)
        wait = (corpus.workloads_at + LEAD - dt.datetime.now(dt.UTC)).total_seconds()
        if wait > 0:
            time.sleep(wait)
        ctx.start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    try:
        scenario.script(ctx)
        end = ctx.end or dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        assert ctx.start is not None
        findings, inc, tl, events = analyse(ctx.start, end, ctx.extra_metrics, st)
    finally:
        if scenario.window == "live":
            drills.reset(sb, api)
    row = score(scenario, ctx, findings)
    ROWS[scenario.name] = row
    causes = findings[findings["kind"] == "cause"]
    shown = findings[["rank", "kind", "check", "severity", "time", "object"]].to_string()
    if scenario.check is None:
        assert not causes["severity"].isin(["high", "critical"]).any(), shown
    else:
        assert row["first"] == scenario.check, shown
        assert row["object_ok"], f"rank 1 names {causes.iloc[0]['object']}, expected {ctx.obj}\n{shown}"
        assert row["time_ok"], f"rank 1 began {causes.iloc[0]['time']}, expected {ctx.began}\n{shown}"
        above = set(findings.iloc[: int(causes.iloc[0]["rank"]) - 1]["check"])
        assert not above & set(scenario.not_above), shown
        later = causes.iloc[1:]
        for check in scenario.also:
            hit = later[later["check"] == check]
            assert len(hit), f"{check} not found after the first cause\n{shown}"
            obj, began = ctx.facts["second"]
            assert hit.iloc[0]["object"] == obj, shown
            assert abs(hit.iloc[0]["time"] - pd.Timestamp(began)) <= TOLERANCE, shown
            assert hit.iloc[0]["time"] >= causes.iloc[0]["time"], shown
    for check in scenario.standing:
        standing = findings[(findings["kind"] == "standing") & (findings["check"] == check)]
        assert len(standing), f"standing {check} not listed\n{shown}"
        assert standing["rank"].min() > (causes["rank"].max() if len(causes) else 0)
    if "evicted" in ctx.facts and scenario.check in ("node.lost", "zone.outage"):
        first = causes.iloc[0]
        tme = events[events["reason"] == "TaintManagerEviction"][["time", "first_time", "name", "message", "count"]]
        assert set(ctx.facts["evicted"]) <= set(first["data"]["evicted_pods"]), f"{first['data']}\n{tme}"
        assert first["data"]["workloads"], first["data"]
        # the post-mortem draft and the timeline carry the corrected facts
        draft = postmortem.draft(inc, tl, findings)
        assert all(p in draft for p in ctx.facts["evicted"][:3]) and "workloads that lost capacity" in draft
        assert tl["what"].str.contains("TaintManagerEviction").any()
        if scenario.check == "zone.outage":
            assert f"availability zone `{ctx.facts['zone']}` lost" in draft


def score(scenario: Scenario, ctx: Ctx, findings: pd.DataFrame) -> dict[str, Any]:
    causes = findings[findings["kind"] == "cause"]
    first = causes.iloc[0] if len(causes) else None
    second = causes.iloc[1] if len(causes) > 1 else None
    standing = findings[findings["kind"] == "standing"]
    time_ok = (
        first is not None
        and ctx.began is not None
        and abs(pd.Timestamp(first["time"]) - pd.Timestamp(ctx.began)) <= TOLERANCE
    )
    return {
        "expected": scenario.check or "(no cause ≥ high)",
        "first": None if first is None else first["check"],
        "first_text": "—" if first is None else f"{first['check']} ({first['severity']})",
        "object": "" if first is None else str(first["object"]),
        "object_ok": first is not None and str(first["object"]) == ctx.obj,
        "time_ok": time_ok,
        "offset": None
        if first is None or ctx.began is None
        else (pd.Timestamp(first["time"]) - pd.Timestamp(ctx.began)).total_seconds(),
        "second": "—" if second is None else f"{second['check']} `{second['object']}`",
        "standing": ", ".join(sorted(set(standing["check"]))) or "—",
        "window": scenario.window,
    }


def render_table(elapsed: float) -> str:
    lines = [
        "# Incident corpus: expected vs ranked first",
        "",
        "Produced by `tests/incidents/test_corpus.py` on the sandbox (`OPSBOOK_WRITE_DOCS=1` writes this",
        "file; a plain test run only prints it). Live windows open at least two minutes after the workloads",
        "started; history windows are incidents from earlier in the night that closed before they started.",
        "Time ok: the first cause's start within ±60 s of when the script began it.",
        f"Whole corpus run: {elapsed:.0f} s.",
        "",
        "| scenario | window | expected | ranked first | object | object ok | time ok (offset s) | "
        "ranked second | standing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in SCENARIOS:
        r = ROWS.get(s.name)
        if r is None:
            lines.append(f"| {s.name} | {s.window} | `{s.check}` | (not run) | | | | | |")
            continue
        quiet = s.check is None
        ok_obj = "n/a" if quiet else ("yes" if r["object_ok"] else "**no**")
        ok_t = "n/a" if quiet else (f"yes ({r['offset']:+.0f})" if r["time_ok"] else f"**no** ({r['offset']})")
        lines.append(
            f"| {s.name} | {s.window} | `{r['expected']}` | `{r['first_text']}` | `{r['object']}` | {ok_obj} | "
            f"{ok_t} | {r['second']} | {r['standing']} |"
        )
    return "\n".join(lines) + "\n"
