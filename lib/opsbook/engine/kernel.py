"""Start a run's kernel early, so it boots while the engine does everything else.

A Python kernel takes about a second to answer (its process imports IPython and
ipykernel). ``opsbook run`` starts it as soon as it knows the runbook (:func:`start_kernel`),
then checks the environment and the parameters, reads and parameterises the notebook and
enters the run in the index while the kernel boots on the other core;
:func:`opsbook.engine.run.run_runbook` hands the started kernel to nbclient, which then
owns it exactly as a kernel it started itself (same command line, working directory and
environment; shut down the same way at the end).

A kernel that is never handed over (the checks stopped the run: exit 2 or 4) is killed
by :meth:`EarlyKernel.discard` or, at the latest, when the process exits. This module
imports only jupyter_client, so starting the kernel costs the CLI almost nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KERNEL_NAME = "python3"
# what nbclient passes: no start-up chatter in reports or terminals; IPython's history in memory
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
HISTORY_ARGUMENT = "--HistoryManager.hist_file=:memory:"


def kernel_environment(
    env: Mapping[str, str] | None, artifacts_dir: str, kubeconfig: Path | None
) -> dict[str, str]:
    """The environment a run's kernel gets: this process's, ``env`` added, the run's own variables set."""
    out = {**os.environ, **(env or {})}
    out["OPSBOOK_OUTPUT_DIR"] = artifacts_dir  # files the runbook writes here are saved beside the report
    # the kernel must be this interpreter, whatever `python` is on PATH
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    if kubeconfig:
        out["KUBECONFIG"] = str(kubeconfig)
    return out


class EarlyKernel:
    """A kernel process started ahead of the run, with the run's artifacts directory and kubeconfig.

    Attributes:
        km: the ``AsyncKernelManager`` (None once handed over or discarded).
        artifacts_dir: the run's ``$OPSBOOK_OUTPUT_DIR``.
        kubeconfig: the private kubeconfig of ``--context`` (deleted with the kernel), else None.
        env: the kernel's environment.
        cwd: the kernel's working directory (the notebook's directory).
    """

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None, context: str | None = None) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.cwd = cwd
        self._asked = (cwd, dict(env or {}), context, dict(os.environ))
        self.kubeconfig: Path | None = None
        if context:
            from opsbook.engine.identity import kubeconfig_for_context

            self.kubeconfig = kubeconfig_for_context(context, {**os.environ, **(env or {})})
        self.artifacts_dir = tempfile.mkdtemp(prefix="opsbook-artifacts-")
        self.env = kernel_environment(env, self.artifacts_dir, self.kubeconfig)
        self.km: Any = AsyncKernelManager(kernel_name=KERNEL_NAME)
        self._handed_over = False
        atexit.register(self.discard)
        try:
            run_sync(self.km.start_kernel)(
                extra_arguments=[*KERNEL_ARGUMENTS, HISTORY_ARGUMENT], cwd=str(cwd), env=self.env
            )
        except Exception:
            self.discard()
            raise

    def matches(self, cwd: Path, env: Mapping[str, str] | None, context: str | None) -> bool:
        """Whether this kernel is the one the run would start now (same directory, environment, context)."""
        return self.km is not None and self._asked == (cwd, dict(env or {}), context, dict(os.environ))

    def take(self) -> Any:
        """Hand the kernel manager over (to nbclient, which shuts the kernel down at the end)."""
        km, self.km = self.km, None
        self._handed_over = True
        atexit.unregister(self.discard)
        return km

    def discard(self) -> None:
        """Kill a kernel that was not handed over and remove what the run would have removed."""
        atexit.unregister(self.discard)
        km, self.km = self.km, None
        if km is not None:
            from jupyter_core.utils import run_sync

            with contextlib.suppress(Exception):
                run_sync(km.shutdown_kernel)(now=True)
            with contextlib.suppress(Exception):
                run_sync(km.cleanup_resources)()
        if not self._handed_over:
            shutil.rmtree(self.artifacts_dir, ignore_errors=True)
            if self.kubeconfig:
                self.kubeconfig.unlink(missing_ok=True)


def start_kernel(cwd: Path, env: Mapping[str, str] | None = None, context: str | None = None) -> EarlyKernel | None:
    """Start the run's kernel now; None if it cannot be started here (the run then starts it itself)."""
    try:
        return EarlyKernel(cwd, env, context)
    except Exception:  # e.g. an unknown --context: the run reports it where it always did
        return None
