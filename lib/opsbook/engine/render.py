"""Render a run: HTML report without code, JSON summary, and the index page."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

if TYPE_CHECKING:
    from opsbook.engine.run import RunResult

SEVERITY_COLOURS = {
    "critical": "#b00020",
    "high": "#e65100",
    "medium": "#f9a825",
    "low": "#1565c0",
    "info": "#607d8b",
}
STATUS_COLOURS = {"ok": "#2e7d32", "findings": "#e65100", "failed": "#b00020"}


def summary_json(result: RunResult) -> str:
    """The run's JSON summary."""
    return json.dumps(result.summary(), indent=2, default=str) + "\n"


def _header(result: RunResult) -> str:
    s = result.summary()
    colour = STATUS_COLOURS.get(result.status, "#333")
    counts = ", ".join(f"{n} {k}" for k, n in s["finding_counts"].items() if n) or "no findings"
    params = (
        "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(json.dumps(v))}"
            "</code></td></tr>"
            for k, v in result.parameters.items()
        )
        or "<tr><td>defaults</td></tr>"
    )
    failed = ""
    if result.failed_step:
        failed = (
            f"<p><b>Failed at step:</b> {html.escape(result.failed_step)}<br>"
            f"<code>{html.escape(result.error or '')}</code></p>"
        )
    arts = [(k.split(":", 1)[1], v) for k, v in result.locations.items() if k.startswith("artifact:")]
    if arts:
        links = " · ".join(
            f"<a href='{html.escape(v.rsplit('/', 1)[-1])}'>{html.escape(n)}</a>" for n, v in arts
        )
        failed += f"<p><b>Also saved:</b> {links}</p>"
    return (
        f"<div style='border-left:6px solid {colour};padding:8px 16px;margin:16px 0;background:#fafafa'>"
        f"<h2 style='margin:0'>{html.escape(result.runbook)} — <span style='color:{colour}'>"
        f"{result.status.upper()}</span></h2>"
        f"<p>run <code>{result.run_id}</code> · started {s['started']} · {s['duration_s']:.1f}s · {counts}</p>"
        f"{failed}<details><summary>parameters</summary><table>{params}</table></details></div>"
    )


def notebook_html(nb: Any, result: RunResult) -> str:
    """HTML of the executed notebook without code cells (outputs, tables and plots stay)."""
    c = Config()
    c.TagRemovePreprocessor.remove_cell_tags = ("remove-cell",)
    c.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(config=c)
    exporter.log.setLevel("ERROR")  # "alternative text is missing" on every plot is noise here
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.from_dict(nb))
    marker = "<body"
    i = body.find(marker)
    if i >= 0:
        j = body.find(">", i) + 1
        body = body[:j] + _header(result) + body[j:]
    return str(body)


def index_html(summaries: list[dict[str, Any]]) -> str:
    """An index page listing every run, newest first."""
    rows = []
    for s in sorted(summaries, key=lambda s: s.get("started", ""), reverse=True):
        colour = STATUS_COLOURS.get(s.get("status", ""), "#333")
        counts = ", ".join(f"{n} {k}" for k, n in s.get("finding_counts", {}).items() if n) or "—"
        run = f"{s['runbook']}/{s['run_id']}"
        rows.append(
            f"<tr><td>{html.escape(s.get('started', ''))}</td><td>{html.escape(s['runbook'])}</td>"
            f"<td style='color:{colour};font-weight:bold'>{html.escape(s.get('status', ''))}</td>"
            f"<td>{html.escape(counts)}</td><td>{s.get('duration_s', 0):.1f}s</td>"
            f"<td><a href='{run}.html'>report</a> · <a href='{run}.ipynb'>notebook</a> · "
            f"<a href='{run}.json'>json</a></td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>opsbook reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 12px;text-align:left}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f"<h1>opsbook reports</h1><p>{len(rows)} runs, newest first.</p>"
        "<table><tr><th>started (UTC)</th><th>runbook</th><th>status</th><th>findings</th><th>took</th>"
        f"<th>files</th></tr>{''.join(rows)}</table></body></html>\n"
    )
