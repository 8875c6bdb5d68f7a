"""``make demo``: the full tour on a fresh sandbox, ending with HTML reports and nothing left running.

1. bring the sandbox up;
2. create-cluster with the team's original kops parameters (sandbox provider: 5 t2.medium nodes over
   three zones, an m3.medium master, 172.10.0.0/16);
3. replay one incident: RabbitMQ's t2 node runs out of CPU credits and the queue backs up;
4. run validate-cluster, outage-analysis, cost-credit-review and cluster-inventory;
5. undo the drill, tear the sandbox down, print a one-screen summary and where the reports are.

Run as ``python -m opsbook.cli.demo [--reports DIR] [--keep]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opsbook.engine.catalog import find_runbook
from opsbook.engine.params import parse_parameters
from opsbook.engine.run import RunResult, run_runbook
from opsbook.errors import OpsbookError, exit_code_of
from opsbook.report import SEVERITY_RANK
from opsbook.sandbox import Sandbox

console = Console()
DEMO_SANDBOX = "opsbook-demo"

DRILL = "cpu-credits-exhausted"
# (runbook, parameters) in the order the tour runs them; the drill runs after the first one.
TOUR: list[tuple[str, dict[str, Any]]] = [
    ("create-cluster", {"provider": "sandbox", "apply": "true", "network_cidr": "172.10.0.0/16",
                        "node_count": "5", "sandbox_name": DEMO_SANDBOX}),
    ("validate-cluster", {}),
    ("outage-analysis", {"last_hours": "7", "title": "TaxiPosition queue backlog (demo drill)",
                         "extra_metrics": "RabbitMQ/MessagesReady:Queue=TaxiPosition"}),
    ("cost-credit-review", {"window_days": "1", "period_minutes": "5"}),
    ("cluster-inventory", {}),
]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    ap = argparse.ArgumentParser(prog="python -m opsbook.cli.demo", description=__doc__)
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
        for i, (name, raw) in enumerate(TOUR):
            rb = find_runbook(name)
            params = parse_parameters(rb.parameters, raw, rb.name)
            console.rule(f"[bold]{name}")
            res = run_runbook(rb, params, output=args.reports, fail_on="critical", env=env,
                              progress=lambda ev: console.print(f"    [{ev.index}/{ev.total}] {ev.name}"))
            results.append(res)
            if i == 0:
                console.rule(f"[bold]drill: {DRILL}")
                from opsbook.k8s.client import api_client
                from opsbook.sandbox import drills

                drill = drills.run_drill(DRILL, sb, api_client(env["KUBECONFIG"]))
                for line in drill.did:
                    console.print(f"  {line}")
    except OpsbookError as e:
        console.print(f"[red]demo failed:[/red] {escape(str(e))}")
        return exit_code_of(e)  # the tree's code, as the CLI's (opsbook.errors)
    finally:
        if not args.keep:
            console.rule("[bold]teardown")
            st = sb.state()
            if st is not None:
                from opsbook.k8s.client import api_client
                from opsbook.sandbox import drills

                for line in drills.reset(sb, api_client(st.kubeconfig)):
                    console.print(f"  {line}")
            sb.down(progress=lambda m: console.print(f"  {m}"))
    table = Table(title=f"opsbook demo — {time.monotonic() - t0:.0f}s")
    for col in ("runbook", "status", "findings", "took", "worst finding"):
        table.add_column(col, overflow="fold")
    for r in results:
        worst = max(r.findings, key=lambda f: SEVERITY_RANK[f.severity], default=None)
        top = escape(f"[{worst.severity}] {worst.message[:90]}") if worst else "—"
        table.add_row(r.runbook, r.status, str(len(r.findings)), f"{r.duration_s:.0f}s", top)
    console.print(table)
    index = Path(args.reports).resolve() / "index.html"
    console.print(f"\n[bold green]Reports:[/bold green] {index}  (open it in a browser)")
    failed = [r for r in results if r.status == "failed"]
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
