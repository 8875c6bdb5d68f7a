"""The sandbox's AWS: a real moto server process on 127.0.0.1."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from opsbook.procs import free_port, port_open, read_pid, spawn, terminate, wait_for
from opsbook.sandbox.kops_images import moto_env


def start(state_dir: Path, port: int | None = None) -> tuple[int, int]:
    """Start ``moto.server`` (if not already running) and return ``(pid, port)``.

    The server starts knowing the images of kops' pinned channel (:mod:`opsbook.sandbox.kops_images`).
    """
    pid_file = state_dir / "moto.pid"
    port_file = state_dir / "moto.port"
    pid = read_pid(pid_file)
    if pid is not None and port_file.exists():
        return pid, int(port_file.read_text())
    port = port or free_port()
    pid = spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        state_dir / "moto.log",
        pid_file,
        env={**os.environ, **moto_env(state_dir)},
    )
    port_file.write_text(str(port))
    wait_for(lambda: port_open(port) and _healthy(port), 30, f"moto server on port {port}")
    return pid, port


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2) as r:
        return bool(r.status == 200)


def stop(state_dir: Path) -> bool:
    """Stop the moto server; return whether one was running."""
    pid = read_pid(state_dir / "moto.pid")
    if pid is None:
        return False
    terminate(pid)
    (state_dir / "moto.pid").unlink(missing_ok=True)
    return True


def reset(endpoint: str) -> None:
    """Wipe every resource in the moto server (``POST /moto-api/reset``)."""
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass
