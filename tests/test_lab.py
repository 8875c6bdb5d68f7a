"""`opsbook lab` serves a scratch copy of a runbook (never notebooks/) and redacts what it saves."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

from opsbook.cli.lab import log_file, prepare_workspace, start_lab
from opsbook.engine.catalog import find_runbook
from opsbook.engine.params import parse_parameters

ROOT = Path(__file__).resolve().parents[1]


def api(base: str, token: str, path: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}/api/contents/{path}", data=data, method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_for_lab(proc: subprocess.Popen[bytes], base: str, token: str, directory: Path) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return api(base, token, "")
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer: {log_file(directory).read_text()[-2000:]}")


def _notebooks_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", "notebooks"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_lab_serves_a_filled_in_scratch_copy_and_redacts_on_save(tmp_path: Path) -> None:
    before = _notebooks_status()
    rb = find_runbook("validate-cluster")
    params = parse_parameters(rb.parameters, {"wait": "0", "exclude": "check:config.*"}, rb.name)
    directory, notebook = prepare_workspace(rb, params, tmp_path / "lab")
    assert notebook is not None and notebook.parent == tmp_path / "lab"
    assert notebook.name.endswith("-validate-cluster.ipynb")
    cells = nbformat.read(notebook, as_version=4).cells
    injected = [c for c in cells if "injected-parameters" in c.metadata.tags]
    assert len(injected) == 1 and injected[0].source == '# Parameters\nwait = 0\nexclude = ["check:config.*"]\n'
    assert all(not c.get("outputs") for c in cells)

    secret = f"tok-{uuid.uuid4().hex}"
    proc, url = start_lab({"OPSBOOK_TEST_TOKEN": secret}, open_browser=False, directory=directory, notebook=notebook)
    base, token = url.split("/lab/tree/")[0], url.split("?token=")[1]
    try:
        listing = wait_for_lab(proc, base, token, directory)
        assert [c["name"] for c in listing["content"] if c["type"] == "notebook"] == [notebook.name]
        model = api(base, token, notebook.name)
        cell = model["content"]["cells"][-1]
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"token is {secret}\n"}]
        api(base, token, notebook.name, "PUT", {"type": "notebook", "format": "json", "content": model["content"]})
        saved = notebook.read_text()
        assert secret not in saved and "token is ***REDACTED***" in saved
        with pytest.raises(urllib.error.HTTPError) as e:  # without the token the server refuses
            urllib.request.urlopen(f"{base}/api/contents/", timeout=5)
        assert e.value.code == 403
    finally:
        proc.terminate()
        proc.wait(30)
    assert _notebooks_status() == before  # the lab wrote nothing into notebooks/ (edits made before stay as they were)


def test_without_a_runbook_every_runbook_is_copied(tmp_path: Path) -> None:
    directory, notebook = prepare_workspace(None, {}, tmp_path)
    assert notebook is None and directory.parent == tmp_path
    assert sorted(p.name for p in directory.iterdir()) == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert os.path.commonpath([directory, ROOT / "notebooks"]) != str(ROOT / "notebooks")
