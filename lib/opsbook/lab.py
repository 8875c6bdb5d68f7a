"""``opsbook lab``: JupyterLab on notebooks/ with the sandbox's (or a given cluster's) environment set."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from opsbook.engine.catalog import notebooks_dir
from opsbook.sandbox.procs import free_port


def lab_command(port: int, token: str, open_browser: bool, directory: Path | None = None) -> list[str]:
    """The ``jupyter lab`` command line opsbook uses."""
    d = directory or notebooks_dir()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={d}",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
    ]
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines run as root
        cmd.append("--allow-root")
    return cmd


def start_lab(
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    open_browser: bool = True,
    directory: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start JupyterLab in the background; return the process and its URL (with token)."""
    port = port or free_port()
    token = secrets.token_hex(16)
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    proc = subprocess.Popen(
        lab_command(port, token, open_browser, directory),
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return proc, f"http://127.0.0.1:{port}/lab?token={token}"
