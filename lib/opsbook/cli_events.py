"""``opsbook events``: keep Kubernetes events longer than the API server does.

Registered in :mod:`opsbook.cli` with ``app.add_typer(events_app, name="events")``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Annotated, Any

import typer

from opsbook.errors import BadInput, OpsbookError

log = logging.getLogger(__name__)

events_app = typer.Typer(
    help="Kubernetes events: archive them beyond the API server's 1 h --event-ttl.", no_args_is_help=True
)


@events_app.command("archive")
def archive(
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Directory, .jsonl file, or s3://bucket/prefix to append JSON lines to."
        ),
    ],
    duration: Annotated[
        float | None,
        typer.Option(
            min=1, help="Seconds to run; default: until Ctrl-C (run it as a Deployment or CronJob)."
        ),
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (default: all).")] = None,
    flush_every: Annotated[float, typer.Option(min=1, help="Seconds between writes.")] = 30.0,
) -> None:
    """Watch events and append them to a local or S3 JSON-lines archive.

    The outage-analysis runbook reads the archive (parameter ``events_archive``) for windows older
    than the API server keeps. Exit codes: 0 ok, 2 bad input, 4 cluster/AWS unreachable.
    """
    from opsbook.archive import archive_events

    seen = {"n": 0, "t": time.monotonic()}

    def progress(_: dict[str, Any]) -> None:
        seen["n"] += 1
        if time.monotonic() - seen["t"] > 10:
            seen["t"] = time.monotonic()
            print(f"{time.strftime('%H:%M:%S')} {seen['n']} events archived", file=sys.stderr)

    try:
        sink = archive_events(
            output, namespace=namespace, duration=duration, flush_every=flush_every, on_event=progress
        )
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(2) from e
    except OpsbookError as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(4) from e
    print(f"{sink.written} events archived to {', '.join(sink.objects) or output}")
