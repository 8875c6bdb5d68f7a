"""``opsbook lab``: JupyterLab on a scratch copy of a runbook, never on the tracked notebooks.

The runbook is copied into a workspace (``~/.local/share/opsbook/lab/`` or
``--workspace DIR``), its parameters filled with values checked by the same
parser as ``opsbook run`` (papermill's injected-parameters cell), and JupyterLab
is started there with the sandbox's (or the given cluster's) environment. A
pre-save hook (:func:`redact_on_save`) redacts every notebook the way
``opsbook run`` redacts its reports before anything reaches the disk; if
redaction fails, the save is refused rather than written unredacted.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
from papermill.parameterize import parameterize_notebook

from opsbook.engine.catalog import Runbook, catalog, notebooks_dir
from opsbook.errors import BadInput
from opsbook.procs import free_port
from opsbook.redact import redact_notebook, secret_values

SAVE_HOOK = "opsbook.cli.lab.redact_on_save"


def lab_home() -> Path:
    """Default workspace: ``$XDG_DATA_HOME/opsbook/lab`` (``~/.local/share/opsbook/lab``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opsbook" / "lab"


def check_workspace(directory: Path | None) -> None:
    """Refuse a workspace inside the tracked ``notebooks/`` (raises BadInput)."""
    if directory is None:
        return
    tracked = notebooks_dir().resolve()
    d = directory.resolve()
    if d == tracked or tracked in d.parents:
        raise BadInput(
            f"--workspace {directory} is inside the tracked runbooks ({tracked}); choose a scratch "
            "directory (default ~/.local/share/opsbook/lab) so outputs never land in git"
        )


def scratch_copy(runbook: Runbook, parameters: Mapping[str, Any], workspace: Path, stamp: str) -> Path:
    """Copy ``runbook`` into ``workspace`` with its parameters filled in; return the copy's path."""
    nb = nbformat.read(runbook.path, as_version=4)
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.setdefault("papermill", {})
    if parameters:
        nb = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    nb.metadata.setdefault("opsbook", {})["lab"] = {"copied_from": runbook.name, "created": stamp}
    workspace.mkdir(parents=True, exist_ok=True)
    path = workspace / f"{stamp}-{runbook.name}.ipynb"
    nbformat.write(nb, path)
    return path


def prepare_workspace(
    runbook: Runbook | None, parameters: Mapping[str, Any], workspace: Path | None = None
) -> tuple[Path, Path | None]:
    """Make the scratch workspace; return ``(directory to serve, notebook to open or None)``.

    With a runbook, one filled-in copy; without, a fresh folder holding a copy of every runbook.
    """
    directory = workspace or lab_home()
    check_workspace(directory)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if runbook is not None:
        return directory, scratch_copy(runbook, parameters, directory, stamp)
    folder = directory / f"{stamp}-runbooks"
    folder.mkdir(parents=True, exist_ok=True)
    for rb in catalog():
        shutil.copyfile(rb.path, folder / rb.path.name)
    return folder, None


def redact_on_save(model: dict[str, Any], path: str, contents_manager: Any = None, **_: Any) -> None:
    """Jupyter ``pre_save_hook``: redact a notebook model in place before it is written.

    Raises:
        tornado.web.HTTPError: redaction failed; the save is refused (never written unredacted).
    """
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    try:
        nb = nbformat.from_dict(model["content"])
        redact_notebook(nb, secret_values(os.environ))
        model["content"] = nb
    except Exception as e:
        from tornado.web import HTTPError

        raise HTTPError(500, f"opsbook did not save {path}: redacting it failed ({e})") from e


def lab_command(
    port: int, token: str, open_browser: bool, directory: Path | None = None, default_url: str | None = None
) -> list[str]:
    """The ``jupyter lab`` command line opsbook uses."""
    d = directory or lab_home()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={d}",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
        f"--ContentsManager.pre_save_hook={SAVE_HOOK}",
        f"--LabApp.workspaces_dir={d / '.jupyterlab-workspaces'}",  # open tabs are remembered per workspace
        "--LabApp.news_url=",  # no network calls for news or update checks
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if default_url:
        cmd.append(f"--ServerApp.default_url={default_url}")
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
    notebook: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start JupyterLab in the background; return the process and its URL (with token).

    Files the runbook writes to ``$OPSBOOK_OUTPUT_DIR`` (post-mortem drafts, plans) go to the workspace.
    """
    d = directory or lab_home()
    d.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    token = secrets.token_hex(16)
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.setdefault("OPSBOOK_OUTPUT_DIR", str(d))
    page = f"/lab/tree/{quote(str(notebook.relative_to(d)))}" if notebook else "/lab"
    with log_file(d).open("ab") as log:  # a pipe nobody reads would block the server once full
        proc = subprocess.Popen(
            lab_command(port, token, open_browser, d, default_url=page),
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=d,
        )
    return proc, f"http://127.0.0.1:{port}{page}?token={token}"


def log_file(directory: Path) -> Path:
    """JupyterLab's log for a workspace."""
    return directory / ".opsbook-lab.log"
