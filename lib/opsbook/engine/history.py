"""Report history: the index manifest, the index page, retention, and what changed between two runs.

The manifest (``index.json`` beside ``index.html``) holds one small entry per run,
so a new run updates the index with one read and one write, whatever the number
of past runs (with S3 output: one GET and one conditional PUT). A run is entered
as ``running`` when it starts and replaced by its result when it ends, so a
process killed mid-run shows as ``interrupted`` once its deadline has passed,
never as a success. Concurrent writers do not lose entries (see
:meth:`opsbook.engine.storage.Storage.update_manifest`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2

from opsbook.engine.storage import Entries, Storage
from opsbook.errors import BadInput
from opsbook.procs import pid_alive
from opsbook.times import parse_time

RUNNING = "running"
INTERRUPTED = "interrupted"
MESSAGE_CHARS = 300


def entry(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest entry for a run summary (small: no parameters, records trimmed to numbers)."""
    ident = summary.get("cluster") or {}
    records = summary.get("records") or {}
    score = None
    validation = records.get("validation")
    if isinstance(validation, Mapping) and isinstance(validation.get("score"), int | float):
        score = validation["score"]
    elif isinstance(records.get("score"), int | float):
        score = records["score"]
    return {
        "runbook": summary.get("runbook"),
        "run_id": summary.get("run_id"),
        "status": summary.get("status"),
        "exit_code": summary.get("exit_code"),
        "started": summary.get("started"),
        "ended": summary.get("ended"),
        "deadline": summary.get("deadline"),
        "duration_s": summary.get("duration_s"),
        "failed_step": summary.get("failed_step"),
        "finding_counts": summary.get("finding_counts", {}),
        "findings": [
            {
                "check": f.get("check", ""),
                "object": f.get("object", ""),
                "severity": f.get("severity", ""),
                "message": str(f.get("message", ""))[:MESSAGE_CHARS],
            }
            for f in summary.get("findings", [])
        ],
        "score": score,
        "cluster": ident,
        "cluster_key": ident.get("cluster_name") or ident.get("context") or ident.get("api_server") or "",
        "runner": summary.get("runner"),
    }


def upsert(entries: Entries, new: dict[str, Any]) -> Entries:
    """Replace the entry with the same runbook and run id, or add it."""
    key = (new["runbook"], new["run_id"])
    return [e for e in entries if (e.get("runbook"), e.get("run_id")) != key] + [new]


def effective_status(e: Mapping[str, Any], now: datetime | None = None) -> str:
    """The status to show: ``interrupted`` for a run still marked running whose process is gone.

    A process is known gone when it ran on this host and its pid is dead, or when the
    run's deadline (its timeout plus a minute) has passed.
    """
    status = str(e.get("status", ""))
    if status != RUNNING:
        return status
    runner = e.get("runner") or {}
    pid = runner.get("pid")
    if runner.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        return INTERRUPTED
    now = now or datetime.now(UTC)
    deadline = e.get("deadline")
    if deadline and parse_time(str(deadline)) < now:
        return INTERRUPTED
    return RUNNING


def load(store: Storage) -> Entries:
    """The manifest; built once from the saved summaries when an older output has none."""
    entries = store.read_manifest()
    if entries is not None:
        return entries
    old = [entry(s) for s in store.list_summaries()]
    return store.update_manifest(lambda cur: cur or old)


def newest_first(entries: Entries) -> Entries:
    """Entries sorted newest first."""
    return sorted(entries, key=lambda e: str(e.get("started", "")), reverse=True)


_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>opsbook reports</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 12px;text-align:left}
tr:nth-child(even){background:#f4f4f4}.ok{color:#2e7d32}.findings{color:#e65100}
.failed,.interrupted{color:#b00020}.running{color:#607d8b}td.s{font-weight:bold}</style></head><body>
<h1>opsbook reports</h1>
<p>{{ entries|length }} runs on {{ clusters|length }} cluster(s), newest first.
<label>cluster <select id="cluster" onchange="f()"><option value="">all</option>
{% for c in clusters %}<option value="{{ c }}">{{ c }}</option>{% endfor %}</select></label></p>
{% if trend %}<h2>validate-cluster score</h2><table><tr><th>cluster</th><th>oldest → newest</th></tr>
{% for c, scores in trend.items() %}<tr data-cluster="{{ c }}"><td>{{ c }}</td><td>{{ scores|join(" → ") }}</td></tr>
{% endfor %}</table>{% endif %}
<table><tr><th>started (UTC)</th><th>runbook</th><th>cluster</th><th>context</th><th>AWS account</th>
<th>status</th><th>findings</th><th>took</th><th>files</th></tr>
{% for e in entries %}<tr data-cluster="{{ e.cluster_key }}"><td>{{ e.started_shown }}</td><td>{{ e.runbook }}</td>
<td>{{ e.cluster.cluster_name }}</td><td>{{ e.cluster.context }}</td><td>{{ e.cluster.aws_account }}</td>
<td class="s {{ e.shown_status }}">{{ e.shown_status }}{% if e.failed_step %} ({{ e.failed_step }}){% endif %}</td>
<td>{{ e.counts }}</td><td>{{ "%.1f"|format(e.duration_s or 0) }}s</td>
<td>{% if e.shown_status not in ("running", "interrupted") %}<a href="{{ e.runbook }}/{{ e.run_id }}.html">report</a> ·
<a href="{{ e.runbook }}/{{ e.run_id }}.ipynb">notebook</a> · <a href="{{ e.runbook }}/{{ e.run_id }}.json">json</a>
{% endif %}</td></tr>
{% endfor %}</table>
<script>function f(){var c=document.getElementById("cluster").value;
document.querySelectorAll("tr[data-cluster]").forEach(function(r){
r.style.display=(!c||r.dataset.cluster===c)?"":"none";});}</script>
</body></html>
"""
_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)


def _shown_time(value: Any) -> str:
    """``2026-12-01 08:03:18`` (UTC, to the second) as the reports show times; the raw value if unparsable."""
    try:
        t = parse_time(str(value))
    except BadInput:
        return str(value or "")
    return f"{t:%Y-%m-%d %H:%M:%S}"


def index_html(entries: Entries, now: datetime | None = None) -> str:
    """The index page from manifest entries (Jinja2, autoescaped), with a cluster filter and a score trend."""
    rows = []
    for e in newest_first(entries):
        counts = ", ".join(f"{n} {k}" for k, n in (e.get("finding_counts") or {}).items() if n) or "—"
        rows.append(
            {**e, "shown_status": effective_status(e, now), "counts": counts, "cluster": e.get("cluster") or {},
             "started_shown": _shown_time(e.get("started"))}
        )
    trend: dict[str, list[Any]] = {}
    for e in reversed(rows):
        if e.get("runbook") == "validate-cluster" and e.get("score") is not None:
            trend.setdefault(str(e.get("cluster_key") or "?"), []).append(e["score"])
    clusters = sorted({str(e.get("cluster_key") or "") for e in rows} - {""})
    return _ENV.from_string(_TEMPLATE).render(entries=rows, clusters=clusters, trend=trend)


def write_index(store: Storage, entries: Entries) -> None:
    """Render and write index.html from ``entries``."""
    store.write_index(index_html(entries))


def record_start(store: Storage, summary: Mapping[str, Any], timeout_s: float) -> Entries:
    """Enter a run as ``running`` (with its deadline) before it executes."""
    started = parse_time(str(summary["started"]))
    deadline = (started + timedelta(seconds=timeout_s + 60)).isoformat()
    runner = {"host": socket.gethostname(), "pid": os.getpid()}
    e = entry({**summary, "status": RUNNING, "deadline": deadline, "runner": runner})
    entries = store.update_manifest(lambda cur: upsert(cur, e))
    write_index(store, entries)
    return entries


def record_end(store: Storage, summary: Mapping[str, Any]) -> Entries:
    """Replace the run's entry with its result and rewrite index.html."""
    entries = store.update_manifest(lambda cur: upsert(cur, entry(summary)))
    write_index(store, entries)
    return entries


@dataclass
class Pruned:
    """What retention removed and kept."""

    deleted: list[str] = field(default_factory=list)
    kept: int = 0


def prune(
    store: Storage, keep: int | None = None, keep_days: float | None = None, now: datetime | None = None
) -> Pruned:
    """Delete old runs: keep the newest ``keep`` per runbook and cluster, and/or runs younger than ``keep_days``.

    The newest finished run of each runbook (per cluster) is never deleted, and
    running entries are left alone.
    """
    if keep is None and keep_days is None:
        raise BadInput("give --keep N and/or --keep-days D")
    if keep is not None and keep < 1:
        raise BadInput("--keep must be at least 1: the newest run of a runbook is never deleted")
    now = now or datetime.now(UTC)
    doomed: set[tuple[str, str]] = set()
    groups: dict[tuple[str, str], Entries] = {}
    for e in load(store):
        if e.get("status") == RUNNING:
            continue
        groups.setdefault((str(e.get("runbook")), str(e.get("cluster_key", ""))), []).append(e)
    for runs in groups.values():
        for i, e in enumerate(newest_first(runs)):
            if i == 0:
                continue
            too_many = keep is not None and i >= keep
            too_old = keep_days is not None and parse_time(str(e["started"])) < now - timedelta(
                days=keep_days
            )
            if too_many or too_old:
                doomed.add((str(e["runbook"]), str(e["run_id"])))
    for runbook, run_id in sorted(doomed):
        store.delete_run(runbook, run_id)
    entries = store.update_manifest(lambda cur: [e for e in cur if (e.get("runbook"), e.get("run_id")) not in doomed])
    write_index(store, entries)
    return Pruned(deleted=[f"{r}/{i}" for r, i in sorted(doomed)], kept=len(entries))


def find(entries: Entries, ref: str) -> dict[str, Any]:
    """A run by ``run_id``, ``runbook/run_id``, a unique run-id prefix, or ``RUNBOOK@latest`` / ``RUNBOOK@previous``."""
    if "@" in ref:
        runbook, which = ref.split("@", 1)
        runs = [e for e in newest_first(entries) if e.get("runbook") == runbook and e.get("status") != RUNNING]
        idx = {"latest": 0, "previous": 1}.get(which)
        if idx is None or len(runs) <= idx:
            raise BadInput(f"{ref!r}: no such run (use RUNBOOK@latest or RUNBOOK@previous)")
        return runs[idx]
    rid = ref.rsplit("/", 1)[-1].removesuffix(".json")
    hits = [e for e in entries if str(e.get("run_id", "")).startswith(rid)]
    if len(hits) != 1:
        raise BadInput(f"{ref!r} matches {len(hits)} runs; give more of the run id (see `opsbook reports list`)")
    return hits[0]


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from run ``a`` to run ``b``: new, resolved and unchanged findings, and the score change."""

    def key(f: Mapping[str, Any]) -> str:
        return f"{f.get('check', '')}|{f.get('object', '')}"

    fa = {key(f): f for f in a.get("findings", [])}
    fb = {key(f): f for f in b.get("findings", [])}
    sa, sb = a.get("score"), b.get("score")
    return {
        "from": a.get("run_id"),
        "to": b.get("run_id"),
        "status": [a.get("status"), b.get("status")],
        "new": [fb[k] for k in fb if k not in fa],
        "resolved": [fa[k] for k in fa if k not in fb],
        "unchanged": [fb[k] for k in fb if k in fa],
        "score": [sa, sb],
        "score_change": (sb - sa) if isinstance(sa, int | float) and isinstance(sb, int | float) else None,
    }


def show(store: Storage, e: Mapping[str, Any]) -> dict[str, Any]:
    """A run's full JSON summary."""
    return dict(json.loads(store.read_text(str(e["runbook"]), f"{e['run_id']}.json")))
