"""Render a run: the HTML report without code, and the JSON summary (the index page is history.py's)."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsbook.display import format_duration, format_time
from opsbook.report import SEVERITY_RANK, Finding

if TYPE_CHECKING:
    from opsbook.engine.run import RunResult

SEVERITY_COLOURS = {
    "critical": "#b00020",
    "high": "#e65100",
    "medium": "#b7791f",
    "low": "#1565c0",
    "info": "#607d8b",
}
STATUS_COLOURS = {"ok": "#2e7d32", "findings": "#e65100", "failed": "#b00020", "environment": "#6a1b9a"}
STATUS_ENVIRONMENT = "environment"


def summary_json(result: RunResult) -> str:
    """The run's JSON summary."""
    return json.dumps(result.summary(), indent=2, default=str) + "\n"


TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "opsbook_report"
STATUS_LABELS = {"ok": "OK", "findings": "FINDINGS", "failed": "FAILED", "environment": "ENVIRONMENT"}
FIX_KEYS = ("fix", "action", "what_to_do")


DUMP_LINE = re.compile(r"^\s*(HTTP response (headers|body)|Traceback \(most recent call last\))")


def one_paragraph(text: str, limit: int = 900) -> str:
    """The first paragraph of ``text`` on one line: an error's headline without its dumps.

    Stops at a blank line or at a line that starts a dump (the kubernetes client's
    ``HTTP response headers:``/``HTTP response body:``, a traceback).
    """
    kept: list[str] = []
    for line in text.strip().splitlines():
        if (not line.strip() and kept) or DUMP_LINE.match(line):
            break
        kept.append(line)
    para = " ".join(" ".join(kept).split())
    if len(para) > limit:
        para = para[: limit - 1].rstrip() + "…"
    return para if not para or para[-1] in ".!?…" else para + "."


def what_to_do(f: Finding) -> str:
    """The finding's fix (``data['fix']`` and kin), else where to look (``evidence``)."""
    for k in FIX_KEYS:
        v = f.data.get(k)
        if isinstance(v, str) and v:
            return v
    return f.evidence


def findings_rows(findings: list[Finding]) -> list[dict[str, str]]:
    """Rows of the report's findings table, most severe first (stable within a severity)."""
    ordered = sorted(findings, key=lambda f: -SEVERITY_RANK[f.severity])
    return [
        {
            "severity": f.severity,
            "colour": SEVERITY_COLOURS[f.severity],
            "check": f.check,
            "object": f.object,
            "message": f.message,
            "todo": what_to_do(f),
        }
        for f in ordered
    ]


def report_resources(result: RunResult) -> dict[str, Any]:
    """What the report template shows above the notebook (all plain text: the template escapes it)."""
    s = result.summary()
    counts = ", ".join(f"{n} {k}" for k, n in reversed(list(s["finding_counts"].items())) if n) or "none"
    target = result.target or {}
    arts = [(k.split(":", 1)[1], v) for k, v in result.locations.items() if k.startswith("artifact:")]
    environment = result.status == STATUS_ENVIRONMENT
    if environment:
        no_findings = "Nothing was checked: the environment is not ready (see above)."
    elif result.failed_step:
        no_findings = "No findings before the run stopped."
    else:
        no_findings = "No findings."
    context = target.get("context", "")
    if target.get("server"):
        context = f"{context} ({target['server']})"
    return {
        "runbook": result.runbook,
        "run_id": result.run_id,
        "status": result.status,
        "status_label": STATUS_LABELS.get(result.status, result.status.upper()),
        "status_colour": STATUS_COLOURS.get(result.status, "#57606a"),
        "cluster": target.get("cluster", "not set"),
        "context": context or "not set",
        "window": target.get("window", ""),
        "started": format_time(result.started),
        "duration": format_duration(result.ended - result.started),
        "counts": counts,
        "failed_step": None if environment else result.failed_step,
        "environment": environment,
        "error": one_paragraph(result.error or ""),
        "artifacts": [{"name": n, "href": v.rsplit("/", 1)[-1]} for n, v in arts],
        "parameters": [{"name": k, "value": json.dumps(v)} for k, v in result.parameters.items()],
        "findings": findings_rows(result.findings),
        "has_todo": any(what_to_do(f) for f in result.findings),  # no empty column when no finding says
        "no_findings": no_findings,
    }


_EXPORTER: Any = None
_EXPORTER_LOCK = threading.Lock()


def exporter() -> Any:
    """The report's nbconvert ``HTMLExporter``, made once per process with its templates compiled.

    nbconvert's import (≈ 0.2-1 s: mistune, bleach, jsonschema ...) and the first compile of the
    lab templates cost more than the rendering itself, so the engine calls :func:`prepare` in a
    background thread while the kernel runs and every report of the process reuses the result.
    """
    global _EXPORTER
    with _EXPORTER_LOCK:
        if _EXPORTER is None:
            from nbconvert import HTMLExporter
            from traitlets.config import Config

            c = Config()
            c.TagRemovePreprocessor.remove_cell_tags = ("remove-cell",)
            c.TagRemovePreprocessor.enabled = True
            ex = HTMLExporter(config=c, extra_template_basedirs=[str(TEMPLATE_DIR)], template_name=TEMPLATE_NAME)
            ex.log.setLevel("ERROR")  # "alternative text is missing" on every plot is noise here
            ex.exclude_input = True
            ex.exclude_input_prompt = True
            ex.exclude_output_prompt = True
            _ = ex.template  # compile the templates now (jinja2), not while the run waits for its report
            _EXPORTER = ex
        return _EXPORTER


def prepare() -> threading.Thread:
    """Import nbconvert and compile the report templates in a background thread (see :func:`exporter`)."""

    def work() -> None:
        with contextlib.suppress(Exception):  # notebook_html makes it again and raises there
            exporter()

    t = threading.Thread(target=work, name="opsbook-report-prepare", daemon=True)
    t.start()
    return t


def notebook_html(nb: Any, result: RunResult) -> str:
    """The HTML report: run header, findings table, then the notebook's outputs without code.

    Rendered with nbconvert's template mechanism (``templates/opsbook_report`` extends the lab
    template); cells tagged ``remove-cell`` are left out, error tracebacks folded in ``<details>``.
    """
    import nbformat

    resources = {"opsbook": report_resources(result), "metadata": {"name": f"{result.runbook} {result.run_id}"}}
    body, _ = exporter().from_notebook_node(nbformat.from_dict(nb), resources=resources)
    return str(body)
