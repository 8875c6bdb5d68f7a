"""``make demo``: bring the sandbox up, run every runbook against it, write HTML reports, tear down.

Run as ``python -m opsbook.demo [--reports DIR] [--keep]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from opsbook.engine.catalog import catalog
from opsbook.engine.params import parse_parameters
from opsbook.engine.run import RunResult, run_runbook
from opsbook.errors import OpsbookError
from opsbook.sandbox import Sandbox

console = Console()
DEMO_SANDBOX = "opsbook-demo"

# Parameters the demo passes to each runbook (others run with their defaults).
DEMO_PARAMETERS: dict[str, dict[str, Any]] = {}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    ap = argparse.ArgumentParser(prog="python -m opsbook.demo", description=__doc__)
    ap.add_argument("--reports", default="reports", help="where to write reports (default: reports/)")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    sb = Sandbox(DEMO_SANDBOX)
    results: list[RunResult] = []
    try:
        console.rule("[bold]opsbook demo: sandbox")
        sb.up(progress=lambda m: console.print(f"  {m}"))
        env = sb.activate()
        console.rule("[bold]runbooks")
        for rb in catalog():
            params = parse_parameters(rb.parameters, DEMO_PARAMETERS.get(rb.name, {}), rb.name)
            console.print(f"  running [bold]{rb.name}[/bold] ...")
            res = run_runbook(
                rb,
                params,
                output=args.reports,
                fail_on="critical",
                env=env,
                progress=lambda ev: console.print(f"    [{ev.index}/{ev.total}] {ev.name}"),
            )
            results.append(res)
    except OpsbookError as e:
        console.print(f"[red]demo failed:[/red] {e}")
        return 4
    finally:
        if not args.keep:
            console.rule("[bold]teardown")
            sb.down(progress=lambda m: console.print(f"  {m}"))
    table = Table(title=f"opsbook demo — {time.monotonic() - t0:.0f}s")
    for col in ("runbook", "status", "findings", "took", "report"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.runbook, r.status, str(len(r.findings)), f"{r.duration_s:.1f}s", r.locations.get("html", "")
        )
    console.print(table)
    index = Path(args.reports).resolve() / "index.html"
    console.print(f"\n[bold green]Reports:[/bold green] {index}  (open it in a browser)")
    failed = [r for r in results if r.status == "failed"]
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
