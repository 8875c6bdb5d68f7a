"""The ``opsbook`` command line: the Typer app, its root group and the commands that are not a group.

Exit codes (documented in ``opsbook --help`` and README):
  0 success · 1 findings at/above --fail-on · 2 bad input · 3 execution error ·
  4 environment problem (sandbox/toolchain/cluster unreachable)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from opsbook.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EXIT_EXECUTION,
    EXIT_FINDINGS,
    EXIT_OK,
    BadInput,
    OpsbookError,
    SandboxError,
    exit_code_of,
)

if TYPE_CHECKING:
    from opsbook.engine.catalog import Runbook

__all__ = ["EXIT_BAD_INPUT", "EXIT_ENVIRONMENT", "EXIT_EXECUTION", "EXIT_FINDINGS", "EXIT_OK", "app", "main"]

console = Console(stderr=True)
out = Console()


def report_error(e: OpsbookError) -> int:
    """Say ``e`` in one paragraph on stderr (no traceback) and return its exit code (:mod:`opsbook.errors`)."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/bold red] {escape(str(e))}", soft_wrap=True)
    return exit_code_of(e)


class _Commands(TyperGroup):
    """The root command group: the one place an opsbook error becomes a paragraph and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer's (vendored) click Context
        try:
            return super().invoke(ctx)
        except OpsbookError as e:
            raise typer.Exit(report_error(e)) from e


app = typer.Typer(
    cls=_Commands,
    name="opsbook",
    help=(
        "Runbook notebooks for a kops-on-AWS Kubernetes cluster.\n\n"
        "Exit codes: 0 ok, 1 findings at/above --fail-on, 2 bad input, 3 execution error, "
        "4 environment (sandbox/cluster/toolchain) problem."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # Typer's own: `opsbook --install-completion` / `--show-completion`
)
sandbox_app = typer.Typer(
    help="A local sandbox: real kube-apiserver (kwok nodes) + moto server.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")


def _register_events() -> None:
    from opsbook.cli.events import events_app

    app.add_typer(events_app, name="events", help="Keep Kubernetes events beyond their 1 h TTL.")


_register_events()


def _register_reports() -> None:
    from opsbook.cli.reports import reports_app

    app.add_typer(reports_app, name="reports", help="Report history: list, show, diff, prune.")


_register_reports()


def _say(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def _need(module: str, extra: str) -> None:
    """Exit 4 with the install command when an optional extra is missing (the base install is the runner)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        console.print(f"[bold red]error:[/bold red] this needs {module}: pip install 'opsbook\\[{extra}]'")
        raise typer.Exit(EXIT_ENVIRONMENT)


def _version(value: bool) -> None:
    if value:
        from opsbook import __version__

        out.print(f"opsbook {__version__}")
        raise typer.Exit(EXIT_OK)


FORMATS = ("text", "json")
FormatOption = Annotated[str, typer.Option("--format", help="text (tables for people) or json (for scripts).")]


def _complete_runbook(incomplete: str) -> list[str]:
    """Shell completion of runbook names (file stems in notebooks/; no notebook is parsed)."""
    from opsbook.engine.catalog import notebooks_dir

    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb") if p.stem.startswith(incomplete))


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt!r}: choose text or json")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command("toolchain")
def toolchain_cmd(
    kops: Annotated[
        bool,
        typer.Option(
            "--kops/--no-kops",
            help="Also build kops and its amd64 node binaries (needed by create-cluster's kops provider and the "
            "kops tests; ≈ 6 min, up to 26 on 2 busy cores). arm64 gets stand-ins unless --arm64.",
        ),
    ] = False,
    arm64: Annotated[
        bool,
        typer.Option(
            "--arm64",
            help="With --kops: build kops' arm64 node binaries for real (≈ 5 min, up to 18 on 2 busy cores); "
            "create-cluster builds them itself when a plan has arm64 instance types.",
        ),
    ] = False,
    list_only: Annotated[
        bool, typer.Option("--list", help="Only say what would be built, with estimates; build nothing.")
    ] = False,
) -> None:
    """Build (or confirm) the pinned control-plane binaries in ~/.cache/opsbook/bin (and kops with --kops)."""
    from opsbook.sandbox.toolchain import Toolchain, ensure_toolchain

    arches = ("amd64", "arm64") if arm64 else ("amd64",)
    if list_only:
        from opsbook.kops.toolchain import build_list

        todo = [(name, "control plane") for name in Toolchain.expected().missing()]
        if kops:
            todo += build_list(arches=arches)
        for what, estimate in todo:
            out.print(f"{what:60} {estimate}")
        if not todo:
            out.print("nothing to build")
        return
    tc = ensure_toolchain(_say)
    for name, path in tc.paths().items():
        out.print(f"{name:26} {path}")
    if not kops:
        return
    from opsbook.kops.toolchain import ensure_kops, ensure_kops_assets

    kops_bin = ensure_kops(_say)
    repo = ensure_kops_assets(_say, arches=arches)  # nodeup/protokube/channels for offline `kops update`
    out.print(f"{'kops':26} {kops_bin}")
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
    _need("moto", "sandbox")
    from opsbook.kops.spec import ClusterSpec
    from opsbook.sandbox import Sandbox, env_file
    from opsbook.sandbox.cluster import Timing

    if backend not in ("auto", "kwok", "kind", "kubeconfig"):
        raise BadInput(f"--backend {backend!r} is not one of auto, kwok, kind, kubeconfig")
    spec = ClusterSpec(node_count=nodes, node_size=node_size, master_size=master_size)
    timing = Timing(
        heartbeat_factor=heartbeat_factor,
        not_ready_toleration_s=toleration_seconds,
        unreachable_toleration_s=toleration_seconds,
    )
    Sandbox(name).up(spec=spec, timing=timing, kubeconfig=kubeconfig, backend=backend, progress=_say)
    out.print(f"source {env_file(name)}")


@sandbox_app.command("down")
def sandbox_down(name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook") -> None:
    """Stop everything the sandbox started."""
    from opsbook.sandbox import Sandbox

    Sandbox(name).down(progress=_say)


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
        raise SandboxError(f"sandbox {name!r} is not up: run `opsbook sandbox up --name {name}`")
    sys.stdout.write(f"{f}\n" if path else f.read_text())


@sandbox_app.command("kops-validate")
def sandbox_kops_validate(
    name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook",
    compare: Annotated[bool, typer.Option(help="Also run opsbook's kops group and compare.")] = True,
) -> None:
    """Run the real `kops validate cluster -o json` against the sandbox (exit code: kops')."""
    from opsbook.cli.kops import kops_validate_command

    code = kops_validate_command(name, compare, out.print_json)
    raise typer.Exit(code)


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
    # -f files are cluster profiles shared by every runbook: keys this runbook does not declare are skipped
    declared = {p.name for p in rb.parameters}
    unused = sorted(k for k in raw if k not in declared)
    if unused:
        console.print(f"[dim]profile keys not used by {rb.name}: {', '.join(map(str, unused))}[/dim]")
    raw = {k: v for k, v in raw.items() if k in declared}
    for pair in pairs:
        if "=" not in pair:
            raise BadInput(f"-p {pair!r}: write parameters as NAME=VALUE, e.g. -p wait=300")
        k, v = pair.split("=", 1)
        raw[k.strip()] = v
    import os

    from opsbook.engine.identity import env_defaults

    raw.update(env_defaults(declared, raw, os.environ))  # KOPS_CLUSTER_NAME, AWS_REGION, KOPS_STATE_STORE
    return rb, parse_parameters(rb.parameters, raw, rb.name)


@app.command("list")
def list_cmd(fmt: FormatOption = "text") -> None:
    """Every runbook: purpose, read-only or mutating, parameters."""
    from opsbook.engine.catalog import catalog

    _check_format(fmt)

    table = Table(title="opsbook runbooks")
    table.add_column("runbook", style="bold")
    table.add_column("purpose")
    table.add_column("changes things?")
    table.add_column("parameters")
    runbooks = catalog()
    if fmt == "json":
        from opsbook.engine.describe import runbook_dict

        sys.stdout.write(json.dumps([runbook_dict(rb, full=False) for rb in runbooks], indent=2) + "\n")
        return
    for rb in runbooks:
        params = ", ".join(f"{p.name}: {p.describe_type()} = {p.default!r}" for p in rb.parameters)
        table.add_row(
            rb.name, rb.purpose, "[red]yes (dry-run by default)[/red]" if rb.mutates else "read-only", params
        )
    out.print(table)


@app.command("describe")
def describe_cmd(
    runbook: Annotated[
        str, typer.Argument(help="Runbook name (see `opsbook list`).", autocompletion=_complete_runbook)
    ], fmt: FormatOption = "text"
) -> None:
    """One runbook in full: description and every parameter with type, default and help."""
    from rich.markdown import Markdown

    from opsbook.engine.catalog import find_runbook

    _check_format(fmt)
    rb = find_runbook(runbook)
    if fmt == "json":
        from opsbook.engine.describe import runbook_dict

        sys.stdout.write(json.dumps(runbook_dict(rb), indent=2) + "\n")
        return
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
    runbook: Annotated[
        str, typer.Argument(help="Runbook name (see `opsbook list`).", autocompletion=_complete_runbook)
    ],
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
    notify: Annotated[
        list[str] | None,
        typer.Option(help="Webhook (Slack or generic JSON) told on a change of state; also $OPSBOOK_NOTIFY."),
    ] = None,
    heartbeat: Annotated[
        str | None, typer.Option(help="URL pinged after every finished run (dead-man's switch).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context (default: the current one).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="End-of-run summary on stdout: text, or json (the run's summary).")
    ] = "text",
) -> None:
    """Execute a runbook and save an immutable report (notebook, HTML, JSON).

    Exit codes: 0 ok · 1 findings at/above --fail-on · 2 bad input · 3 execution error · 4 environment.
    """
    from opsbook.engine import envcheck
    from opsbook.report import SEVERITIES

    _check_format(fmt)
    if fail_on not in SEVERITIES:
        raise BadInput(f"--fail-on {fail_on!r}: choose one of {', '.join(SEVERITIES)}")
    from opsbook.engine.storage import check_output

    check_output(output)  # a bad --output is bad input: exit 2 before anything runs
    from opsbook.engine.notify import alert_config

    kernel = _early_kernel(runbook, sandbox, context)  # boots while everything below is checked

    rb, params = _load_params(runbook, param or [], params_file or [])
    env = None
    if sandbox:
        from opsbook.sandbox import active_env

        env = active_env(sandbox)
    alerts = alert_config(notify or [], heartbeat)
    if context:
        import os

        from opsbook.engine.identity import kubeconfig_for_context

        ctx_file = kubeconfig_for_context(context, {**os.environ, **(env or {})})  # checks the name too
        try:  # check the cluster the run will use, not the kubeconfig's current context
            problems = envcheck.check_environment(rb.needs, {**(env or {}), "KUBECONFIG": str(ctx_file)})
        finally:
            ctx_file.unlink(missing_ok=True)
    else:
        problems = envcheck.check_environment(rb.needs, env)
    if not problems:
        from opsbook.engine.precheck import run_precheck

        run_precheck(rb, params, env)  # a runbook's own input checks: exit 2 before the kernel starts
    if problems:
        if kernel is not None:
            kernel.discard()
        console.print(f"[bold red]environment:[/bold red] {envcheck.fix_it(problems)}")
        result = envcheck.environment_report(rb, params, problems, output, env, alerts)
        _print_summary(result, fmt)
        raise typer.Exit(EXIT_ENVIRONMENT)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from opsbook.engine.run import StepEvent, run_runbook

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
            alerts=alerts,
            context=context,
            kernel=kernel,
        )
        bar.update(task, completed=bar.tasks[0].total or 0, description="done")
    _print_summary(result, fmt)
    raise typer.Exit(result.exit_code)


def _early_kernel(runbook: str, sandbox: str | None, context: str | None) -> Any:
    """Start the run's kernel before the checks (:mod:`opsbook.engine.kernel`); None if not possible yet."""
    from opsbook.engine.catalog import notebooks_dir
    from opsbook.engine.kernel import start_kernel

    p = Path(runbook)
    path = p if p.suffix == ".ipynb" and p.exists() else notebooks_dir() / f"{runbook}.ipynb"
    if not path.exists():
        return None  # _load_params says why
    env = None
    if sandbox:
        from opsbook.sandbox import active_env

        try:
            env = active_env(sandbox)
        except OpsbookError:
            return None
    return start_kernel(path, env, context)


def _print_summary(result: Any, fmt: str) -> None:
    """The end-of-run summary: a few lines for people, or the run's JSON summary on stdout."""
    if fmt == "json":
        sys.stdout.write(json.dumps(result.summary(), indent=2, default=str) + "\n")
        return
    colour = {"ok": "green", "findings": "yellow", "failed": "red"}.get(result.status, "magenta")
    console.print(
        f"[{colour}]{result.status.upper()}[/{colour}] {result.runbook} in {result.duration_s:.1f}s; "
        f"{len(result.findings)} findings"
    )
    if result.failed_step and result.status == "failed":
        console.print(f"[red]failed at step:[/red] {result.failed_step}\n  {result.error}")
    for kind in ("html", "json", "ipynb"):
        out.print(f"{kind:5} {result.locations.get(kind)}")
    for d in result.notifications:  # targets are named notify[N]/heartbeat: URLs are secrets
        state = "sent" if d["ok"] else f"NOT delivered after {d.get('attempts', 0)} attempts ({d.get('error')})"
        console.print(f"{d['target']}: {state}")


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
    env: list[str] | None = None,
    annotations: list[str] | None = None,
    time_zone: str | None = None,
    namespace: str = "opsbook",
) -> list[dict[str, Any]]:
    from opsbook.engine import schedule

    rb, params = _load_params(runbook, param or [], params_file or [])
    objs = schedule.render(
        rb.name,
        cron,
        params,
        output,
        image=image,
        fail_on=fail_on,
        timeout_s=timeout,
        namespace=namespace,
        env=schedule.parse_pairs(env or [], "--env"),
        service_account_annotations=schedule.parse_pairs(annotations or [], "--service-account-annotation"),
        time_zone=time_zone,
    )
    runs = schedule.next_runs(schedule.validate_cron(cron), time_zone)
    console.print(f"next runs ({time_zone or 'UTC'}): " + ", ".join(t.strftime("%a %Y-%m-%d %H:%M") for t in runs))
    return objs


CronOpt = Annotated[str, typer.Option(help="Cron schedule, e.g. '*/10 * * * *' or '0 9 * * MON-FRI'.")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", help="NAME=VALUE for the runner (no secrets).")]
AnnotationOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--service-account-annotation",
        help="KEY=VALUE on the runner's ServiceAccount, e.g. eks.amazonaws.com/role-arn=arn:aws:iam::...:role/...",
    ),
]
TzOpt = Annotated[str | None, typer.Option("--time-zone", help="IANA zone of the schedule (default UTC).")]
NsOpt = Annotated[str, typer.Option("--namespace", help="Namespace of the CronJob.")]


RunbookArg = Annotated[str, typer.Argument(help="Runbook name.")]
ScheduleOutputOpt = Annotated[str, typer.Option("--output", help="Where reports go, e.g. s3://bucket/opsbook.")]
ParamsOpt = Annotated[list[str] | None, typer.Option("-p", "--param", help="NAME=VALUE.")]
ParamsFileOpt = Annotated[list[Path] | None, typer.Option("-f", "--file", help="YAML parameters.")]
ImageOpt = Annotated[str, typer.Option("--image", help="Runner image built from deploy/Dockerfile.")]
JobFailOnOpt = Annotated[str, typer.Option("--fail-on", help="Severity that fails the Job.")]
JobTimeoutOpt = Annotated[int, typer.Option("--timeout", min=60, help="Job deadline in seconds.")]
RUNNER_IMAGE = "opsbook-runner:0.1.0"


def _schedule_command(apply: bool, doc: str) -> Callable[..., None]:
    """``schedule render`` and ``schedule apply``: the same options, then print or server-side apply."""

    def command(
        runbook: RunbookArg,
        cron: CronOpt,
        output: ScheduleOutputOpt,
        param: ParamsOpt = None,
        params_file: ParamsFileOpt = None,
        image: ImageOpt = RUNNER_IMAGE,
        fail_on: JobFailOnOpt = "high",
        timeout: JobTimeoutOpt = 1800,
        env: EnvOpt = None,
        annotation: AnnotationOpt = None,
        time_zone: TzOpt = None,
        namespace: NsOpt = "opsbook",
    ) -> None:
        from opsbook.engine import schedule

        objs = _schedule_objs(
            runbook, cron, param, params_file, output, image, fail_on, timeout, env, annotation, time_zone, namespace
        )
        if not apply:
            sys.stdout.write(schedule.to_yaml(objs))
            return
        for done in schedule.apply(objs):
            out.print(f"applied {done}")

    command.__doc__ = doc
    return command


schedule_render = schedule_app.command("render")(_schedule_command(
    False, "Print the manifests (ClusterRole, Namespace, ServiceAccount, binding, ConfigMap, CronJob)."))
schedule_apply = schedule_app.command("apply")(_schedule_command(
    True, "Server-side apply the manifests (field manager opsbook) to the current cluster (KUBECONFIG)."))


@schedule_app.command("list")
def schedule_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every opsbook CronJob on the current cluster, with its next runs."""
    from opsbook.engine import schedule

    rows = schedule.list_schedules()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="opsbook schedules")
    for col in ("namespace", "cronjob", "runbook", "schedule", "time zone", "last run", "next run"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["namespace"], r["name"], r["runbook"], r["schedule"], r["time_zone"] or "UTC",
                      r["last_schedule"] or "never", r["next_runs"][0] if r["next_runs"] else "")  # fmt: skip
    out.print(table)


@schedule_app.command("delete")
def schedule_delete(
    runbook: Annotated[str, typer.Argument(help="Runbook whose schedule to remove.")],
    namespace: NsOpt = "opsbook",
) -> None:
    """Remove a schedule and everything apply created for it (shared objects go with the last schedule)."""
    from opsbook.engine import schedule

    for what in schedule.delete(runbook, namespace):
        out.print(f"deleted {what}")


@app.command("drill")
def drill_cmd(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="master-restart | node-lost | cpu-credits-exhausted | certificate-expired | "
            "crashloop-after-deploy | bad-database-update | consumer-stalled | zone-outage | ec2-death | "
            "upgrade-blocked-by-pdb | upgrade-single-replica"
        ),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Undo every drill run on this sandbox.")] = False,
    name: Annotated[str, typer.Option(help="Sandbox name.")] = "opsbook",
) -> None:
    """Replay one of the team's past incidents on the sandbox (never on a real cluster)."""
    from opsbook.k8s.client import api_client
    from opsbook.sandbox import Sandbox, drills

    sb = Sandbox(name)
    st = sb.state()
    if st is None:
        raise SandboxError(f"sandbox {name!r} is not up: run `opsbook sandbox up --name {name}` first")
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
    out.print(f"[bold]drill {result.scenario}[/bold] started {result.started}")
    for line in result.did:
        out.print(f"  did: {line}")
    out.print(f"  undo: {result.undo}")
    out.print("  next: opsbook run validate-cluster, then opsbook run outage-analysis -p last_hours=1")


@app.command("lab")
def lab_cmd(
    runbook: Annotated[
        str | None,
        typer.Argument(help="Runbook to open (default: a copy of every runbook).", autocompletion=_complete_runbook),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="NAME=VALUE, parsed as by `opsbook run`.")
    ] = None,
    params_file: Annotated[list[Path] | None, typer.Option("-f", "--file", help="YAML file of parameters.")] = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Scratch directory (default ~/.local/share/opsbook/lab).")
    ] = None,
    name: Annotated[str, typer.Option(help="Sandbox whose environment to use.")] = "opsbook",
    kubeconfig: Annotated[Path | None, typer.Option(help="Use this cluster instead of the sandbox.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
) -> None:
    """Open JupyterLab on a scratch copy of a runbook (parameters filled and checked), never on notebooks/.

    Saved notebooks are redacted before they reach the disk, as `opsbook run` reports are.
    """
    import os

    _need("jupyterlab", "lab")
    from opsbook.cli.lab import check_workspace, prepare_workspace, start_lab
    from opsbook.sandbox import active_env

    env: dict[str, str] = {}
    rb, params = _load_params(runbook, param or [], params_file or []) if runbook else (None, {})
    check_workspace(workspace)
    if kubeconfig is not None:
        if not kubeconfig.exists():
            raise BadInput(f"--kubeconfig {kubeconfig} does not exist")
        env["KUBECONFIG"] = str(kubeconfig.resolve())
    elif not os.environ.get("KUBECONFIG"):
        env = active_env(name)
    directory, notebook = prepare_workspace(rb, params, workspace)
    import signal

    def _stop(*_: object) -> None:  # SIGTERM (a supervisor, a test) stops JupyterLab too, as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    proc, url = start_lab(env, port=port, open_browser=not no_browser, directory=directory, notebook=notebook)
    console.print(f"workspace: {notebook or directory}", soft_wrap=True)
    console.print(f"JupyterLab: [bold]{url}[/bold]  (Ctrl-C to stop)", soft_wrap=True)
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    """Console-script entry point."""
    # jsonschema imports the optional rfc3987-syntax, which compiles a Lark grammar at import (1.3 s of CPU)
    # for an IRI format check nbformat never uses; without it every command and `exit 4` starts faster.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    app()

