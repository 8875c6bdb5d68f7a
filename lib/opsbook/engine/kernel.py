"""Start a run's kernel early, so it boots while the engine does everything else.

A Python kernel takes about a second to answer (its process imports IPython and
ipykernel). ``opsbook run`` starts it as soon as it knows the runbook (:func:`start_kernel`),
then checks the environment and the parameters, reads and parameterises the notebook and
enters the run in the index while the kernel boots on the other core;
:func:`opsbook.engine.run.run_runbook` hands the started kernel to nbclient, which then
owns it exactly as a kernel it started itself (same command line, working directory and
environment; shut down the same way at the end).

While it waits, the kernel also imports the modules the notebook's code imports
(:func:`notebook_imports`; a silent request: no output, no execution count, no name
bound), so the first steps do not pay for pandas, matplotlib or the AWS and Kubernetes
clients while the engine is still checking. A module that fails to import is left for
its step to report, exactly as before.

A kernel that is never handed over (the checks stopped the run: exit 2 or 4) is killed
by :meth:`EarlyKernel.discard` or, at the latest, when the process exits. This module
imports only jupyter_client, so starting the kernel costs the CLI almost nothing.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import json
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


# Run silently in the kernel: `from M import N` without binding anything (N imported as a submodule
# only when M has no attribute N, as the statement itself would); errors are left for the steps.
WARM_UP = """
def _opsbook_warm_up(mods):
    import importlib
    for m, names in mods:
        try:
            mod = importlib.import_module(m)
        except Exception:
            continue
        for n in names:
            if not hasattr(mod, n):
                try:
                    importlib.import_module(m + "." + n)
                except Exception:
                    pass
"""


def notebook_imports(path: Path) -> list[tuple[str, list[str]]]:
    """The top-level absolute imports of a notebook's code cells, in order: ``(module, [names from it])``.

    ``import a.b`` gives ``("a.b", [])``; ``from a import b, c`` gives ``("a", ["b", "c"])``. Cells
    that are not plain Python (magics) and relative imports are skipped. Only the standard library
    is used, so this costs the CLI nothing.
    """
    try:
        cells = json.loads(path.read_text()).get("cells", [])
    except (OSError, ValueError):
        return []
    out: list[tuple[str, list[str]]] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        try:
            tree = ast.parse("".join(src) if isinstance(src, list) else str(src))
        except SyntaxError:
            continue
        for node in tree.body:  # top-level statements only: an import under a condition may never run
            if isinstance(node, ast.Import):
                out += [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out.append((node.module, [a.name for a in node.names if a.name != "*"]))
    return out


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


def kernel_log() -> Path:
    """A file for the kernel process's own stderr, removed at exit when empty.

    A cell's output comes over the wire, not through this stream. Only the kernel's own logging
    lands here (ipykernel, tornado), e.g. a ZMQ "Socket operation on non-socket" traceback while the
    kernel shuts down. Inherited, such a traceback would land in the stderr of ``opsbook run``,
    whose errors are one paragraph.
    """
    fd, name = tempfile.mkstemp(prefix="opsbook-kernel-", suffix=".log")
    os.close(fd)
    path = Path(name)

    def drop_if_empty() -> None:
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:
                path.unlink()

    atexit.register(drop_if_empty)
    return path


class EarlyKernel:
    """A kernel process started ahead of the run, with the run's artifacts directory and kubeconfig.

    Attributes:
        km: the ``AsyncKernelManager`` (None once handed over or discarded).
        artifacts_dir: the run's ``$OPSBOOK_OUTPUT_DIR``.
        kubeconfig: the private kubeconfig of ``--context`` (deleted with the kernel), else None.
        stderr_log: where the kernel process's own stderr goes (:func:`kernel_log`).
        env: the kernel's environment.
        cwd: the kernel's working directory (the notebook's directory).
    """

    def __init__(
        self, cwd: Path, env: Mapping[str, str] | None = None, context: str | None = None, notebook: Path | None = None
    ) -> None:
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
        self._warm_client: Any = None
        self._handed_over = False
        atexit.register(self.discard)
        self.stderr_log = kernel_log()
        try:
            with self.stderr_log.open("ab") as log:  # the kernel keeps its own copy of the descriptor
                run_sync(self.km.start_kernel)(
                    extra_arguments=[*KERNEL_ARGUMENTS, HISTORY_ARGUMENT], cwd=str(cwd), env=self.env, stderr=log
                )
        except Exception:
            self.discard()
            raise
        imports = notebook_imports(notebook) if notebook else []
        if imports:
            with contextlib.suppress(Exception):  # an optimisation only: the steps import what they need
                self._warm_client = self.km.client()
                self._warm_client.start_channels(iopub=False, stdin=False, hb=False, control=False)
                code = f"{WARM_UP}\n_opsbook_warm_up({imports!r})\ndel _opsbook_warm_up\n"
                self._warm_client.execute(code, silent=True, store_history=False, allow_stdin=False)

    def _close_warm_client(self) -> None:
        kc, self._warm_client = self._warm_client, None
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()

    def matches(self, cwd: Path, env: Mapping[str, str] | None, context: str | None) -> bool:
        """Whether this kernel is the one the run would start now (same directory, environment, context)."""
        return self.km is not None and self._asked == (cwd, dict(env or {}), context, dict(os.environ))

    def take(self) -> Any:
        """Hand the kernel manager over (to nbclient, which shuts the kernel down at the end)."""
        self._close_warm_client()
        km, self.km = self.km, None
        self._handed_over = True
        atexit.unregister(self.discard)
        return km

    def discard(self) -> None:
        """Kill a kernel that was not handed over and remove what the run would have removed."""
        atexit.unregister(self.discard)
        self._close_warm_client()
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


def start_kernel(
    notebook: Path, env: Mapping[str, str] | None = None, context: str | None = None
) -> EarlyKernel | None:
    """Start the kernel of a run of ``notebook`` now; None if it cannot be started here (the run then does)."""
    try:
        return EarlyKernel(notebook.parent, env, context, notebook)
    except Exception:  # e.g. an unknown --context: the run reports it where it always did
        return None
