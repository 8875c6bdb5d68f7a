"""``opsbook events``: keep Kubernetes events longer than the API server does.

Registered in :mod:`opsbook.cli.main` with ``app.add_typer(events_app, name="events")``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Annotated, Any

import typer

log = logging.getLogger(__name__)

events_app = typer.Typer(
    help="Kubernetes events: archive them beyond the API server's 1 h --event-ttl.", no_args_is_help=True
)


@events_app.command("archive")
def archive(
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Directory, .jsonl file, or s3://bucket/prefix to append JSON lines to."),
    ],
    duration: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds to run; default: until Ctrl-C (run it as a Deployment or CronJob)."),
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (default: all).")] = None,
    flush_every: Annotated[float, typer.Option(min=1, help="Seconds between writes and checkpoints.")] = 30.0,
    max_backoff: Annotated[
        float, typer.Option(min=1, help="Cap of the backoff between reconnects to the API server, seconds.")
    ] = 10.0,
    event_ttl: Annotated[
        float, typer.Option(min=60, help="The API server's --event-ttl in seconds (dedupe memory is twice it).")
    ] = 3600.0,
    chunk_lines: Annotated[int, typer.Option(min=1, help="Flush (one S3 object) at this many buffered lines.")] = 1000,
    heartbeat_file: Annotated[
        str | None, typer.Option(help="File touched on every pass of the watch loop (liveness probe).")
    ] = None,
) -> None:
    """Watch events and append each version once to a local or S3 JSON-lines archive.

    Survives API server restarts (reconnects with capped backoff, resumes from the last
    resourceVersion, lists again on 410 Gone) and its own restart (a high-water mark beside the
    archive). Where events may be missing it writes a gap marker, which outage-analysis reports.
    The outage-analysis runbook reads the archive (parameter ``events_archive``) for windows older
    than the API server keeps. Exit codes: 0 ok, 2 bad input, 3 an API call failed, 4 cluster/AWS unreachable.
    """
    from opsbook.archive import archive_events

    seen = {"n": 0, "t": time.monotonic()}

    def progress(_: dict[str, Any]) -> None:
        seen["n"] += 1
        if time.monotonic() - seen["t"] > 10:
            seen["t"] = time.monotonic()
            print(f"{time.strftime('%H:%M:%S')} {seen['n']} events archived", file=sys.stderr)

    def terminate(signum: int, _frame: Any) -> None:  # a Deployment stops its pod with SIGTERM
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if main else None
    try:
        sink = archive_events(
            output,
            namespace=namespace,
            duration=duration,
            flush_every=flush_every,
            on_event=progress,
            max_backoff=max_backoff,
            event_ttl=event_ttl,
            max_chunk_lines=chunk_lines,
            heartbeat=heartbeat_file,
        )
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    gaps = f", {sink.gaps} gap markers" if sink.gaps else ""
    print(f"{sink.written} events archived{gaps} to {', '.join(sink.objects) or output}")
