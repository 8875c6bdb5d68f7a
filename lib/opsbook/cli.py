"""The ``opsbook`` command line.

Exit codes (documented in ``opsbook --help`` and README):
  0 success · 1 findings at/above --fail-on · 2 bad input · 3 execution error ·
  4 environment problem (sandbox/toolchain/cluster unreachable)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from opsbook.errors import BadInput, OpsbookError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_EXECUTION = 3
EXIT_ENVIRONMENT = 4

console = Console(stderr=True)
out = Console()

app = typer.Typer(
    name="opsbook",
    help=(
        "Runbook notebooks for a kops-on-AWS Kubernetes cluster.\n\n"
        "Exit codes: 0 ok, 1 findings at/above --fail-on, 2 bad input, 3 execution error, "
        "4 environment (sandbox/cluster/toolchain) problem."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sandbox_app = typer.Typer(help="A local sandbox: real kube-apiserver (kwok nodes) + moto server.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


def _say(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def _fail(e: OpsbookError) -> typer.Exit:
    code = EXIT_BAD_INPUT if isinstance(e, BadInput) else EXIT_ENVIRONMENT
    console.print(f"[bold red]error:[/bold red] {e}")
    return typer.Exit(code)


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command("toolchain")
def toolchain_cmd() -> None:
    """Build (or confirm) the pinned control-plane binaries in ~/.cache/opsbook/bin."""
    from opsbook.sandbox.toolchain import ensure_toolchain

    try:
        tc = ensure_toolchain(_say)
    except OpsbookError as e:
        raise _fail(e) from e
    for name, path in tc.paths().items():
        out.print(f"{name:26} {path}")


@sandbox_app.command("up")
def sandbox_up(
    name: Annotated[str, typer.Option(help="Sandbox name (several can run side by side).")] = "opsbook",
    kubeconfig: Annotated[Path | None, typer.Option(help="Use this existing cluster; start none.")] = None,
    backend: Annotated[str, typer.Option(help="auto | kwok | kind | kubeconfig")] = "auto",
    nodes: Annotated[int, typer.Option(min=1, max=2000, help="Worker nodes, spread over the zones.")] = 3,
    node_size: Annotated[str, typer.Option(help="Worker instance type.")] = "t2.medium",
    master_size: Annotated[str, typer.Option(help="Control-plane instance type.")] = "m3.medium",
    heartbeat_factor: Annotated[float, typer.Option(
        min=0.05, max=5.0,
        help="Scales lease/heartbeat/grace period. 1.0 = production (40 s grace); default 0.25 = 10 s.")] = 0.25,
    toleration_seconds: Annotated[int, typer.Option(
        min=1, max=3600,
        help="default not-ready/unreachable toleration (production: 300).")] = 10,
) -> None:
    """Start the sandbox (safe to run twice) and write its env file."""
    from opsbook.kops.spec import ClusterSpec
    from opsbook.sandbox import Sandbox, env_file
    from opsbook.sandbox.cluster import Timing

    if backend not in ("auto", "kwok", "kind", "kubeconfig"):
        raise _fail(BadInput(f"--backend {backend!r} is not one of auto, kwok, kind, kubeconfig"))
    spec = ClusterSpec(node_count=nodes, node_size=node_size, master_size=master_size)
    timing = Timing(heartbeat_factor=heartbeat_factor, not_ready_toleration_s=toleration_seconds,
                    unreachable_toleration_s=toleration_seconds)
    try:
        Sandbox(name).up(spec=spec, timing=timing, kubeconfig=kubeconfig, backend=backend, progress=_say)
    except OpsbookError as e:
        raise _fail(e) from e
    out.print(f"source {env_file(name)}")


@sandbox_app.command("down")
def sandbox_down(name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook") -> None:
    """Stop everything the sandbox started."""
    from opsbook.sandbox import Sandbox

    try:
        Sandbox(name).down(progress=_say)
    except OpsbookError as e:
        raise _fail(e) from e


@sandbox_app.command("status")
def sandbox_status(
    name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Say what is up. Exit 0 if the sandbox is up, 4 if not."""
    from opsbook.sandbox import Sandbox

    st = Sandbox(name).status()
    if as_json:
        out.print_json(json.dumps(st))
    else:
        table = Table(title=f"sandbox {name}", show_header=False)
        for k, v in st.items():
            table.add_row(k, str(v))
        out.print(table)
    raise typer.Exit(EXIT_OK if st["up"] else EXIT_ENVIRONMENT)


@sandbox_app.command("env")
def sandbox_env(
    name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook",
    path: Annotated[bool, typer.Option("--path", help="Print only the env file's path.")] = False,
) -> None:
    """Print the sandbox environment (`eval "$(opsbook sandbox env)"`)."""
    from opsbook.sandbox import env_file

    f = env_file(name)
    if not f.exists():
        raise _fail(OpsbookError(f"sandbox {name!r} is not up: run `opsbook sandbox up --name {name}`"))
    sys.stdout.write(f"{f}\n" if path else f.read_text())


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
