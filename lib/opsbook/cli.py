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
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from opsbook.errors import BadInput, OpsbookError

if TYPE_CHECKING:
    from opsbook.engine.catalog import Runbook

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
sandbox_app = typer.Typer(
    help="A local sandbox: real kube-apiserver (kwok nodes) + moto server.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")


def _register_events() -> None:
    from opsbook.cli_events import events_app

    app.add_typer(events_app, name="events", help="Keep Kubernetes events beyond their 1 h TTL.")


_register_events()


def _say(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def _fail(e: OpsbookError) -> typer.Exit:
    code = EXIT_BAD_INPUT if isinstance(e, BadInput) else EXIT_ENVIRONMENT
    console.print(f"[bold red]error:[/bold red] {e}")
    return typer.Exit(code)


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


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
    from opsbook.kops.toolchain import ensure_kops, ensure_kops_assets

    try:
        kops = ensure_kops(_say)
        repo = ensure_kops_assets(_say)  # nodeup/protokube/channels for offline `kops update` (arm64 is slow)
    except OpsbookError as e:
        raise _fail(e) from e
    out.print(f"{'kops':26} {kops}")
    out.print(f"{'kops file repository':26} {repo}")


@sandbox_app.command("up")
def sandbox_up(
    name: Annotated[str, typer.Option(help="Sandbox name (several can run side by side).")] = "opsbook",
    kubeconfig: Annotated[Path | None, typer.Option(help="Use this existing cluster; start none.")] = None,
    backend: Annotated[str, typer.Option(help="auto | kwok | kind | kubeconfig")] = "auto",
    nodes: Annotated[int, typer.Option(min=1, max=2000, help="Worker nodes, spread over the zones.")] = 3,
    node_size: Annotated[str, typer.Option(help="Worker instance type.")] = "t2.medium",
    master_size: Annotated[str, typer.Option(help="Control-plane instance type.")] = "m3.medium",
    heartbeat_factor: Annotated[
        float,
        typer.Option(
            min=0.05,
            max=5.0,
            help="Scales lease/heartbeat/grace period. 1.0 = production (40 s grace); default 0.25 = 10 s.",
        ),
    ] = 0.25,
    toleration_seconds: Annotated[
        int, typer.Option(min=1, max=3600, help="default not-ready/unreachable toleration (production: 300).")
    ] = 10,
) -> None:
    """Start the sandbox (safe to run twice) and write its env file."""
    from opsbook.kops.spec import ClusterSpec
    from opsbook.sandbox import Sandbox, env_file
    from opsbook.sandbox.cluster import Timing

    if backend not in ("auto", "kwok", "kind", "kubeconfig"):
        raise _fail(BadInput(f"--backend {backend!r} is not one of auto, kwok, kind, kubeconfig"))
    spec = ClusterSpec(node_count=nodes, node_size=node_size, master_size=master_size)
    timing = Timing(
        heartbeat_factor=heartbeat_factor,
        not_ready_toleration_s=toleration_seconds,
        unreachable_toleration_s=toleration_seconds,
    )
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


def _load_params(runbook_name: str, pairs: list[str], files: list[Path]) -> tuple[Runbook, dict[str, Any]]:
    """Find the runbook and parse -f files then -p pairs by the declared types (raises BadInput)."""
    import yaml

    from opsbook.engine.catalog import find_runbook
    from opsbook.engine.params import parse_parameters

    rb = find_runbook(runbook_name)
    raw: dict[str, Any] = {}
    for f in files:
        try:
            data = yaml.safe_load(f.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise BadInput(f"-f {f}: cannot read parameters file ({e}); it must be a YAML mapping") from e
        if not isinstance(data, dict):
            raise BadInput(f"-f {f}: the parameters file must be a YAML mapping of name: value")
        raw.update(data)
    for pair in pairs:
        if "=" not in pair:
            raise BadInput(f"-p {pair!r}: write parameters as NAME=VALUE, e.g. -p wait=300")
        k, v = pair.split("=", 1)
        raw[k.strip()] = v
    return rb, parse_parameters(rb.parameters, raw, rb.name)


@app.command("list")
def list_cmd() -> None:
    """Every runbook: purpose, read-only or mutating, parameters."""
    from opsbook.engine.catalog import catalog

    table = Table(title="opsbook runbooks")
    table.add_column("runbook", style="bold")
    table.add_column("purpose")
    table.add_column("changes things?")
    table.add_column("parameters")
    try:
        runbooks = catalog()
    except OpsbookError as e:
        raise _fail(e) from e
    for rb in runbooks:
        params = ", ".join(f"{p.name}: {p.describe_type()} = {p.default!r}" for p in rb.parameters)
        table.add_row(
            rb.name, rb.purpose, "[red]yes (dry-run by default)[/red]" if rb.mutates else "read-only", params
        )
    out.print(table)


@app.command("describe")
def describe_cmd(runbook: Annotated[str, typer.Argument(help="Runbook name (see `opsbook list`).")]) -> None:
    """One runbook in full: description and every parameter with type, default and help."""
    from rich.markdown import Markdown

    from opsbook.engine.catalog import find_runbook

    try:
        rb = find_runbook(runbook)
    except OpsbookError as e:
        raise _fail(e) from e
    out.print(Markdown(rb.description))
    out.print(f"\n[bold]{'mutating (dry-run unless told to apply)' if rb.mutates else 'read-only'}[/bold]")
    table = Table(title="parameters")
    for col in ("name", "type", "default", "help"):
        table.add_column(col)
    for p in rb.parameters:
        table.add_row(p.name, p.describe_type(), "(required)" if p.required else repr(p.default), p.help)
    out.print(table)
    out.print(f"\nrun it: opsbook run {rb.name} -p NAME=VALUE ... --output reports/")


@app.command("run")
def run_cmd(
    runbook: Annotated[str, typer.Argument(help="Runbook name (see `opsbook list`).")],
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="NAME=VALUE, parsed by declared type.")
    ] = None,
    params_file: Annotated[
        list[Path] | None, typer.Option("-f", "--file", help="YAML file of parameters.")
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Directory or s3://bucket/prefix.")
    ] = "reports",
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 on findings at/above: info|low|medium|high|critical.")
    ] = "high",
    timeout: Annotated[float, typer.Option(min=1, help="Overall time limit in seconds.")] = 1800,
    sandbox: Annotated[str | None, typer.Option(help="Run against this sandbox's environment.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Execute a runbook and save an immutable report (notebook, HTML, JSON).

    Exit codes: 0 ok · 1 findings at/above --fail-on · 2 bad input · 3 execution error · 4 environment.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from opsbook.engine.run import StepEvent, run_runbook
    from opsbook.report import SEVERITIES

    try:
        if fail_on not in SEVERITIES:
            raise BadInput(f"--fail-on {fail_on!r}: choose one of {', '.join(SEVERITIES)}")
        rb, params = _load_params(runbook, param or [], params_file or [])
        env = None
        if sandbox:
            from opsbook.sandbox import active_env

            env = active_env(sandbox)
        from opsbook.engine.precheck import run_precheck

        run_precheck(rb, params, env)  # a runbook's own input checks: exit 2 before the kernel starts
    except OpsbookError as e:
        raise _fail(e) from e

    with Progress(
        TextColumn("[bold]{task.fields[runbook]}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    ) as bar:
        task = bar.add_task("starting kernel", total=None, runbook=rb.name)  # type: ignore[attr-defined]

        def on_step(ev: StepEvent) -> None:
            bar.update(task, total=ev.total, completed=ev.index - 1, description=ev.name)

        result = run_runbook(
            rb,
            params,
            output=output,
            fail_on=fail_on,
            timeout=timeout,  # type: ignore[arg-type]
            progress=on_step,
            env=env,
        )
        bar.update(task, completed=bar.tasks[0].total or 0, description="done")
    colour = {"ok": "green", "findings": "yellow", "failed": "red"}[result.status]
    console.print(
        f"[{colour}]{result.status.upper()}[/{colour}] {result.runbook} in {result.duration_s:.1f}s; "
        f"{len(result.findings)} findings"
    )
    if result.failed_step:
        console.print(f"[red]failed at step:[/red] {result.failed_step}\n  {result.error}")
    for kind in ("html", "json", "ipynb"):
        out.print(f"{kind:5} {result.locations.get(kind)}")
    raise typer.Exit(result.exit_code)


schedule_app = typer.Typer(help="Run a runbook on a schedule as a Kubernetes CronJob.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


def _schedule_objs(
    runbook: str,
    cron: str,
    param: list[str] | None,
    params_file: list[Path] | None,
    output: str,
    image: str,
    fail_on: str,
    timeout: int,
) -> list[dict[str, object]]:
    from opsbook.engine import schedule

    rb, params = _load_params(runbook, param or [], params_file or [])
    objs = schedule.readonly_role_manifests() + schedule.render(
        rb.name, cron, params, output, image=image, fail_on=fail_on, timeout_s=timeout
    )  # type: ignore[attr-defined]
    return objs  # type: ignore[return-value]


@schedule_app.command("render")
def schedule_render(
    runbook: Annotated[str, typer.Argument(help="Runbook name.")],
    cron: Annotated[str, typer.Option(help="Five-field cron schedule, e.g. '*/10 * * * *'.")],
    output: Annotated[str, typer.Option(help="Where reports go, e.g. s3://bucket/opsbook.")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="NAME=VALUE.")] = None,
    params_file: Annotated[list[Path] | None, typer.Option("-f", "--file", help="YAML parameters.")] = None,
    image: Annotated[
        str, typer.Option(help="Runner image built from deploy/Dockerfile.")
    ] = "opsbook-runner:0.1.0",
    fail_on: Annotated[str, typer.Option(help="Severity that fails the Job.")] = "high",
    timeout: Annotated[int, typer.Option(min=60, help="Job deadline in seconds.")] = 1800,
) -> None:
    """Print the manifests (ClusterRole, ServiceAccount, binding, ConfigMap, CronJob)."""
    from opsbook.engine import schedule

    try:
        objs = _schedule_objs(runbook, cron, param, params_file, output, image, fail_on, timeout)
    except OpsbookError as e:
        raise _fail(e) from e
    sys.stdout.write(schedule.to_yaml(objs))  # type: ignore[arg-type]


@schedule_app.command("apply")
def schedule_apply(
    runbook: Annotated[str, typer.Argument(help="Runbook name.")],
    cron: Annotated[str, typer.Option(help="Five-field cron schedule.")],
    output: Annotated[str, typer.Option(help="Where reports go.")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="NAME=VALUE.")] = None,
    params_file: Annotated[list[Path] | None, typer.Option("-f", "--file", help="YAML parameters.")] = None,
    image: Annotated[str, typer.Option(help="Runner image.")] = "opsbook-runner:0.1.0",
    fail_on: Annotated[str, typer.Option(help="Severity that fails the Job.")] = "high",
    timeout: Annotated[int, typer.Option(min=60, help="Job deadline in seconds.")] = 1800,
) -> None:
    """Apply the manifests to the current cluster (KUBECONFIG)."""
    from opsbook.engine import schedule

    try:
        objs = _schedule_objs(runbook, cron, param, params_file, output, image, fail_on, timeout)
        for done in schedule.apply(objs):  # type: ignore[arg-type]
            out.print(f"applied {done}")
    except OpsbookError as e:
        raise _fail(e) from e


@app.command("drill")
def drill_cmd(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="master-restart | node-lost | cpu-credits-exhausted | certificate-expired | "
            "crashloop-after-deploy | bad-database-update | upgrade-blocked-by-pdb | upgrade-single-replica"
        ),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Undo every drill run on this sandbox.")] = False,
    name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook",
) -> None:
    """Replay one of the team's past incidents on the sandbox (never on a real cluster)."""
    from opsbook.k8s.client import api_client
    from opsbook.sandbox import Sandbox, drills

    sb = Sandbox(name)
    try:
        st = sb.state()
        if st is None:
            raise OpsbookError(f"sandbox {name!r} is not up: run `opsbook sandbox up --name {name}` first")
        if not reset and scenario is None:
            raise BadInput(f"name a drill ({', '.join(drills.DRILLS)}) or pass --reset")
        if scenario is not None and scenario not in drills.DRILLS:
            raise BadInput(f"no drill called {scenario!r}; choose one of {', '.join(drills.DRILLS)}")
        sb.activate()
        api = api_client(st.kubeconfig)
        if reset:
            for line in drills.reset(sb, api) or ["nothing to undo"]:
                out.print(f"undone: {line}")
            return
        assert scenario is not None
        result = drills.run_drill(scenario, sb, api)
    except OpsbookError as e:
        raise _fail(e) from e
    out.print(f"[bold]drill {result.scenario}[/bold] started {result.started}")
    for line in result.did:
        out.print(f"  did: {line}")
    out.print(f"  undo: {result.undo}")
    out.print("  next: opsbook run validate-cluster, then opsbook run outage-analysis -p last_hours=1")


@app.command("lab")
def lab_cmd(
    name: Annotated[str, typer.Option(help="Sandbox whose environment to use.")] = "opsbook",
    kubeconfig: Annotated[Path | None, typer.Option(help="Use this cluster instead of the sandbox.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
) -> None:
    """Open JupyterLab on notebooks/ with the sandbox (or the given cluster's) environment set."""
    import os

    from opsbook.lab import start_lab
    from opsbook.sandbox import active_env

    env: dict[str, str] = {}
    try:
        if kubeconfig is not None:
            if not kubeconfig.exists():
                raise BadInput(f"--kubeconfig {kubeconfig} does not exist")
            env["KUBECONFIG"] = str(kubeconfig.resolve())
        elif not os.environ.get("KUBECONFIG"):
            env = active_env(name)
    except OpsbookError as e:
        raise _fail(e) from e
    proc, url = start_lab(env, port=port, open_browser=not no_browser)
    console.print(f"JupyterLab: [bold]{url}[/bold]  (Ctrl-C to stop)")
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
