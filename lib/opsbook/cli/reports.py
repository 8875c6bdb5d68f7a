"""``opsbook reports``: list, show and diff saved runs; prune old ones."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

reports_app = typer.Typer(help="Report history: list, show, diff, prune.", no_args_is_help=True)
out = Console()

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="Directory or s3://bucket/prefix of the reports.")]


def _entries(output: str) -> tuple[Any, list[dict[str, Any]]]:
    from opsbook.engine import history
    from opsbook.engine.storage import storage_for

    store = storage_for(output)
    return store, history.load(store)


@reports_app.command("list")
def list_cmd(
    output: OutputOpt = "reports",
    runbook: Annotated[str | None, typer.Option(help="Only this runbook.")] = None,
    cluster: Annotated[str | None, typer.Option(help="Only this cluster (name or context).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Saved runs, newest first."""
    from opsbook.engine import history

    _, entries = _entries(output)
    rows = [
        e
        for e in history.newest_first(entries)
        if (runbook is None or e.get("runbook") == runbook)
        and (cluster is None or cluster in (e.get("cluster_key"), (e.get("cluster") or {}).get("context")))
    ][:limit]
    if as_json:
        out.print_json(json.dumps([{**e, "status": history.effective_status(e)} for e in rows], default=str))
        return
    table = Table(title=f"runs in {output}")
    for col in ("started (UTC)", "runbook", "cluster", "status", "findings", "score", "run id"):
        table.add_column(col)
    for e in rows:
        counts = ", ".join(f"{n} {k}" for k, n in (e.get("finding_counts") or {}).items() if n) or "-"
        table.add_row(str(e.get("started", ""))[:19], str(e.get("runbook")), str(e.get("cluster_key", "")),
                      history.effective_status(e), counts, str(e.get("score") if e.get("score") is not None else ""),
                      str(e.get("run_id")))  # fmt: skip
    out.print(table)


@reports_app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix), or RUNBOOK@latest / RUNBOOK@previous.")],
    output: OutputOpt = "reports",
) -> None:
    """A run's JSON summary."""
    from opsbook.engine import history

    store, entries = _entries(output)
    out.print_json(json.dumps(history.show(store, history.find(entries, run)), default=str))


@reports_app.command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help="Earlier run (id, prefix or RUNBOOK@previous).")],
    b: Annotated[str, typer.Argument(help="Later run (id, prefix or RUNBOOK@latest).")],
    output: OutputOpt = "reports",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """New, resolved and unchanged findings between two runs, and the score change."""
    from opsbook.engine import history

    _, entries = _entries(output)
    d = history.diff(history.find(entries, a), history.find(entries, b))
    if as_json:
        out.print_json(json.dumps(d, default=str))
        return
    out.print(f"[bold]{d['from']} → {d['to']}[/bold]  status {d['status'][0]} → {d['status'][1]}")
    if d["score_change"] is not None:
        out.print(f"score {d['score'][0]} → {d['score'][1]} ({d['score_change']:+})")
    for key, colour in (("new", "red"), ("resolved", "green"), ("unchanged", "dim")):
        out.print(f"[{colour}]{key}: {len(d[key])}[/{colour}]")
        for f in d[key]:
            out.print(f"  [{colour}]{f['severity']:8} {f['check']} {f['object']}[/{colour}]  {f['message'][:120]}")


@reports_app.command("prune")
def prune_cmd(
    output: OutputOpt = "reports",
    keep: Annotated[int | None, typer.Option(min=1, help="Keep the newest N runs per runbook and cluster.")] = None,
    keep_days: Annotated[float | None, typer.Option(min=0, help="Keep runs younger than D days.")] = None,
) -> None:
    """Delete old runs (the newest run of each runbook and cluster is always kept)."""
    from opsbook.engine import history
    from opsbook.engine.storage import storage_for

    pruned = history.prune(storage_for(output), keep=keep, keep_days=keep_days)
    for d in pruned.deleted:
        out.print(f"deleted {d}")
    out.print(f"{len(pruned.deleted)} runs deleted, {pruned.kept} kept")
