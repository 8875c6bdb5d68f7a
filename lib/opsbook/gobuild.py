"""Building pinned Go binaries from the module proxy: the cache layout, ``go`` itself and running it.

Shared by the sandbox's control plane (:mod:`opsbook.sandbox.toolchain`) and kops
(:mod:`opsbook.kops.toolchain`); it knows no component. Binaries are cached under
``~/.cache/opsbook/bin/<component>-<version>/`` (``OPSBOOK_CACHE`` moves the root).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from opsbook.errors import ToolchainError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
MIN_GO = (1, 26)


def cache_root() -> Path:
    """Root of opsbook's cache (``$OPSBOOK_CACHE`` or ``~/.cache/opsbook``)."""
    env = os.environ.get("OPSBOOK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "opsbook"


def bin_dir(component: str, version: str) -> Path:
    """Directory that holds the binaries of one pinned component."""
    return cache_root() / "bin" / f"{component}-{version}"


@contextlib.contextmanager
def build_lock(progress: Progress) -> Iterator[None]:
    """Hold the cache's build lock: one opsbook process builds at a time, on this machine.

    Two checkouts running ``make test`` or ``make demo`` at once share ``~/.cache/opsbook/bin``; without
    the lock both build the same binary into the same temp file and one fails on the rename. The
    second process waits here (saying so), then finds the binary built. Callers check what is missing
    again once they hold the lock.
    """
    root = cache_root() / "bin"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            progress(f"waiting for the build already running ({holder}) to finish with {root}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def find_go(needed_by: str) -> str:
    """Return the ``go`` executable, or raise with what to do instead.

    Args:
        needed_by: who needs Go >= 1.26, for the message (e.g. ``kwok v0.8.0 and etcd v3.6.16``).
    """
    go = shutil.which("go")
    if go is None:
        raise ToolchainError(
            "Go is not installed, so the local control plane cannot be built. "
            "Install Go >= 1.26 (https://go.dev/doc/install, or `apt-get install golang`), "
            "or have Docker + kind available, or point `opsbook sandbox up --kubeconfig PATH` "
            "at an existing cluster."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    m = re.match(r"go(\d+)\.(\d+)", out.stdout.strip())
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_GO:
        raise ToolchainError(
            f"Go {out.stdout.strip() or '?'} is too old: {needed_by} need Go >= 1.26. Install a newer Go, "
            "or export GOTOOLCHAIN=go1.26.8 so the go command fetches one from the module proxy."
        )
    return go


def go_env() -> dict[str, str]:
    """The environment ``go`` builds in: the local toolchain, static binaries, no VCS stamping."""
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    return env


def run_go(cmd: list[str], cwd: Path, what: str) -> None:
    """Run a go command in ``cwd``; raise :class:`ToolchainError` with the output's tail when it fails."""
    log.debug("running %s in %s", cmd, cwd)
    proc = subprocess.run(cmd, cwd=cwd, env=go_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolchainError(f"{what} failed: `{' '.join(cmd)}` exited {proc.returncode}:\n{tail}")
