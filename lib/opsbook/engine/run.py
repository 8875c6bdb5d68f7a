"""Execute one runbook and write its immutable record.

Each run produces ``<runbook>/<UTC-timestamp>-<short-id>.{ipynb,html,json}``
under the output (a directory or ``s3://bucket/prefix``) plus an ``index.html``
listing runs newest first. Everything is redacted (:mod:`opsbook.redact`)
before it is written, and every file is written atomically, so an interrupted run
never damages earlier reports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.parameterize import parameterize_notebook

from opsbook.engine import history, render, target
from opsbook.engine.catalog import Runbook
from opsbook.engine.identity import cluster_identity, kubeconfig_for_context
from opsbook.engine.kernel import KERNEL_ARGUMENTS, EarlyKernel, kernel_log, start_kernel
from opsbook.engine.notify import AlertConfig, send_all, summaries_before
from opsbook.engine.storage import Storage, storage_for
from opsbook.errors import EXIT_EXECUTION, exit_code_for_name
from opsbook.redact import redact_notebook, redact_text, secret_values
from opsbook.report import METADATA_KEY, SEVERITY_RANK, Finding

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_FINDINGS = "findings"
STATUS_FAILED = "failed"
STATUS_ENVIRONMENT = "environment"  # stopped before the kernel started (opsbook.engine.envcheck)


@dataclass
class StepEvent:
    """Progress callback payload: which step is running."""

    index: int
    total: int
    name: str


@dataclass
class RunResult:
    """What one run produced."""

    runbook: str
    run_id: str
    status: str
    exit_code: int
    started: datetime
    ended: datetime
    parameters: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None
    locations: dict[str, str] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    target: dict[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Wall time of the run."""
        return (self.ended - self.started).total_seconds()

    def summary(self) -> dict[str, Any]:
        """The JSON summary written beside the report."""
        counts = {s: 0 for s in SEVERITY_RANK}
        for f in self.findings:
            counts[f.severity] += 1
        return {
            "runbook": self.runbook,
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "parameters": self.parameters,
            "failed_step": self.failed_step,
            "error": self.error,
            "finding_counts": counts,
            "findings": [f.__dict__ for f in self.findings],
            "records": self.records,
            "files": self.locations,
            "cluster": self.cluster,
            "notifications": self.notifications,
            "target": self.target,
        }


def step_names(nb: Any) -> dict[int, str]:
    """Name each code cell after the nearest markdown heading/line above it."""
    names: dict[int, str] = {}
    last_md = "setup"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            line = next((ln.strip().lstrip("#").strip() for ln in cell.source.splitlines() if ln.strip()), "")
            if line:
                last_md = line[:80]
        elif cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            if "injected-parameters" in tags:
                names[i] = "parameters"
            elif "parameters" in tags:
                names[i] = "defaults"
            else:
                names[i] = last_md
    return names


def collect_findings(nb: Any) -> tuple[list[Finding], dict[str, Any]]:
    """Read findings and records back from the executed notebook's display metadata."""
    found: list[Finding] = []
    records: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get(METADATA_KEY)
            if not meta:
                continue
            if "finding" in meta:
                found.append(Finding(**meta["finding"]))
            for f in meta.get("findings", []):
                found.append(Finding(**f))
            records.update(meta.get("record", {}))
    return found, records


def run_runbook(
    runbook: Runbook,
    parameters: Mapping[str, Any],
    output: str | Path = "reports",
    fail_on: str = "high",
    timeout: float = 1800,
    progress: Callable[[StepEvent], None] | None = None,
    env: Mapping[str, str] | None = None,
    alerts: AlertConfig | None = None,
    context: str | None = None,
    kernel: EarlyKernel | None = None,
) -> RunResult:
    """Execute ``runbook`` with already-checked ``parameters`` and save the record.

    Args:
        runbook: from :func:`opsbook.engine.catalog.find_runbook`.
        parameters: output of :func:`opsbook.engine.params.parse_parameters`.
        output: directory or ``s3://bucket/prefix``.
        fail_on: findings at or above this severity make the exit code 1.
        timeout: overall limit in seconds (also the limit for any one step).
        progress: called when a step starts.
        env: extra environment for the kernel (e.g. a sandbox's).
        alerts: webhooks and heartbeat (:mod:`opsbook.engine.notify`); their URLs are never saved.
        context: kubeconfig context to use instead of the current one.
        kernel: the run's kernel, already started with the same ``env`` and ``context``
            (:func:`opsbook.engine.kernel.start_kernel`); else it is started here, first thing, so it
            boots while the notebook is read and the run is entered in the index.

    Returns:
        The result; ``exit_code`` is 0 ok, 1 findings at/above ``fail_on``, 3 execution error, or the
        exit code of the opsbook error a step raised (2 bad input, 4 environment: :mod:`opsbook.errors`).
    """
    if kernel is not None and not kernel.matches(runbook.path.parent, env, context):
        log.debug("the kernel started early does not match this run; starting another")
        kernel.discard()  # started for another notebook directory or environment
        kernel = None
    if kernel is None:
        kernel = start_kernel(runbook.path, env, context)
    try:
        return _run_runbook(runbook, parameters, output, fail_on, timeout, progress, env, alerts, context, kernel)
    finally:
        if kernel is not None:
            kernel.discard()  # only if something failed before nbclient took it over


def _run_runbook(
    runbook: Runbook,
    parameters: Mapping[str, Any],
    output: str | Path,
    fail_on: str,
    timeout: float,
    progress: Callable[[StepEvent], None] | None,
    env: Mapping[str, str] | None,
    alerts: AlertConfig | None,
    context: str | None,
    kernel: EarlyKernel | None,
) -> RunResult:
    render.prepare()  # nbconvert and the report templates load while the kernel runs
    store: Storage = storage_for(str(output))
    started = datetime.now(UTC)
    run_id = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    nb = nbformat.read(runbook.path, as_version=4)
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nb = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    names = step_names(nb)
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    total = len(code_cells)

    if kernel is not None:
        private_kubeconfig, artifacts_dir = kernel.kubeconfig, kernel.artifacts_dir
    else:
        private_kubeconfig = kubeconfig_for_context(context, {**os.environ, **(env or {})}) if context else None
        artifacts_dir = tempfile.mkdtemp(prefix="opsbook-artifacts-")
    old_env = dict(os.environ)
    if env:
        os.environ.update(env)
    # files the runbook writes to $OPSBOOK_OUTPUT_DIR (post-mortem drafts, plans) are saved beside the report
    os.environ["OPSBOOK_OUTPUT_DIR"] = artifacts_dir
    # the kernel must be this interpreter, whatever `python` is on PATH
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if private_kubeconfig:
        os.environ["KUBECONFIG"] = str(private_kubeconfig)
    identity = _identity(parameters)
    previous_runs = _record_start(store, runbook.name, run_id, started, identity, timeout)
    deadline = time.monotonic() + timeout
    failed_step: str | None = None
    error: str | None = None
    failed_code = EXIT_EXECUTION
    current = {"index": -1}

    def on_cell_start(cell: Any, cell_index: int) -> None:
        current["index"] = cell_index
        if time.monotonic() > deadline:
            raise CellTimeoutError(f"run exceeded its overall timeout of {timeout:.0f}s")
        if progress and cell.cell_type == "code":
            progress(StepEvent(code_cells.index(cell_index) + 1, total, names.get(cell_index, "")))

    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name="python3",
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": str(runbook.path.parent)}},
        on_cell_start=on_cell_start,
        extra_arguments=list(KERNEL_ARGUMENTS),  # no startup chatter in reports or terminals
    )
    if kernel is not None:
        client.km = kernel.take()  # nbclient owns it from here: it shuts it down as one it started
    try:
        if kernel is not None:
            client.execute()
        else:  # nbclient starts the kernel: its own stderr goes where the early kernel's goes
            with kernel_log().open("ab") as kernel_stderr:
                client.execute(stderr=kernel_stderr)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        failed_step = names.get(current["index"], f"cell {current['index']}")
        error = _short_error(e)
        failed_code = exit_code_for_name(getattr(e, "ename", ""))  # an opsbook error keeps its exit code
    except Exception as e:
        failed_step = names.get(current["index"], "starting the kernel")
        error = f"{e.__class__.__name__}: {e}"
        log.debug("run failed: %s", traceback.format_exc())
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        if private_kubeconfig:
            private_kubeconfig.unlink(missing_ok=True)

    secrets = secret_values({**old_env, **(env or {})}) + (alerts.secrets() if alerts else [])
    findings, records = collect_findings(nb)
    ended = datetime.now(UTC)
    if failed_step is not None:
        status, code = STATUS_FAILED, failed_code
        error = redact_text(error or "", secrets)
        nb.cells.insert(  # for whoever opens the .ipynb; the HTML report's header says it instead
            0,
            nbformat.v4.new_markdown_cell(
                f"## Runbook failed at step: {failed_step}\n\n```\n{error}\n```\n\n"
                "Steps after this one did not run. Fix the cause above and run again.",
                metadata={"tags": ["remove-cell"]},
            ),
        )
    elif any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on] for f in findings):
        status, code = STATUS_FINDINGS, 1
    else:
        status, code = STATUS_OK, 0

    result = RunResult(
        runbook=runbook.name,
        run_id=run_id,
        status=status,
        exit_code=code,
        started=started,
        ended=ended,
        parameters=dict(parameters),
        findings=findings,
        records=records,
        failed_step=failed_step,
        error=error,
        cluster=identity,
        target=target.describe(parameters, {**old_env, **(env or {})}, started),
    )
    nb.metadata.setdefault(METADATA_KEY, {})["run"] = {
        "run_id": run_id,
        "status": status,
        "started": started.isoformat(),
        "ended": ended.isoformat(),
    }
    result.locations = store.locations(runbook.name, run_id)
    for f in sorted(Path(artifacts_dir).rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            with contextlib.suppress(UnicodeDecodeError):
                data = redact_text(data.decode("utf-8"), secrets).encode("utf-8")
            rel = str(f.relative_to(artifacts_dir)).replace(os.sep, "_")
            result.locations[f"artifact:{rel}"] = store.write_artifact(runbook.name, run_id, rel, data)
    shutil.rmtree(artifacts_dir, ignore_errors=True)
    save_run(store, nb, result, secrets, alerts, previous_runs, fail_on)
    return result


def save_run(store: Storage, nb: Any, result: RunResult, secrets: list[str], alerts: AlertConfig | None,
             previous_runs: list[dict[str, Any]], fail_on: str) -> None:
    """The end of every run, executed or stopped by the environment: alerts, the redacted files, the index.

    Tells the alert targets (never failing the run), then writes the notebook, the HTML report and the
    JSON summary, all redacted, and enters the run's end in the index. ``result.locations`` must be set.
    """
    redact_notebook(nb, secrets)
    if alerts:
        previous = summaries_before(previous_runs, result.runbook, history.entry(result.summary())["cluster_key"],
                                    result.started.isoformat())
        try:
            deliveries = send_all(result.summary(), previous, fail_on, result.locations["html"], alerts,
                                  redact=lambda t: redact_text(t, secrets))
            result.notifications = [d.as_dict() for d in deliveries]
        except Exception as e:  # alerts never fail a run
            result.notifications = [{"target": "all", "ok": False, "error": redact_text(repr(e), secrets)}]
    store.write_run(
        result.runbook,
        result.run_id,
        {
            "ipynb": redact_text(nbformat.writes(nb), secrets),
            "html": redact_text(render.notebook_html(nb, result), secrets),
            "json": redact_text(render.summary_json(result), secrets),
        },
    )
    history.record_end(store, _redacted(result.summary(), secrets))


def _redacted(obj: Any, secrets: list[str]) -> Any:
    """``obj`` with every string redacted (for the index manifest)."""
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if isinstance(obj, list):
        return [_redacted(x, secrets) for x in obj]
    if isinstance(obj, dict):
        return {k: _redacted(v, secrets) for k, v in obj.items()}
    return obj


def _identity(parameters: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return cluster_identity(parameters).as_dict()
    except Exception as e:  # identity is best effort; the run goes on
        log.warning("could not tell which cluster this is: %s", e)
        return {"cluster_name": str(parameters.get("cluster_name", "")), "notes": [f"identity unknown: {e}"]}


def _record_start(
    store: Storage, runbook: str, run_id: str, started: datetime, identity: dict[str, Any], timeout: float
) -> list[dict[str, Any]]:
    """Enter the run as running in the index; return the entries as they were (for alerts)."""
    try:
        before = history.load(store)
        history.record_start(
            store, {"runbook": runbook, "run_id": run_id, "started": started.isoformat(), "cluster": identity}, timeout
        )
        return before
    except Exception as e:  # the run itself must still happen; its end writes the index again
        log.warning("could not enter the run in the index: %s", e)
        return []


def _short_error(e: Exception) -> str:
    ename = getattr(e, "ename", e.__class__.__name__)
    evalue = getattr(e, "evalue", None)
    if evalue is not None:
        return f"{ename}: {evalue}"
    text = str(e).strip().splitlines()
    return text[-1] if text else ename
