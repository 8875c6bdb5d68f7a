"""`opsbook lab validate-cluster -p wait=0` in Debian's chromium: Run All works, the findings and score show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from browser import PANEL, artifact, chromium, error_outputs, open_page, run_all_cells, wait_until_serving
from opsbook.procs import free_port
from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[1]


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def lab_pids(workspace: Path) -> list[int]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [int(ln.split()[0]) for ln in ps.splitlines() if f"--ServerApp.root_dir={workspace}" in ln]


def lab_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        m = re.search(r"JupyterLab: (\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError(f"opsbook lab exited with {proc.wait()} before printing its URL")


def test_lab_runs_validate_cluster_in_chromium(sandbox: Sandbox, tmp_path: Path) -> None:
    cmd = [str(Path(sys.executable).parent / "opsbook"), "lab", "validate-cluster", "-p", "wait=0",
           "--workspace", str(tmp_path), "--port", str(free_port()), "--no-browser", "--name", sandbox.name]
    before = git_status()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ))
    try:
        url = lab_url(proc)
        (copy,) = tmp_path.glob("*-validate-cluster.ipynb")
        code_cells = sum(c.cell_type == "code" for c in nbformat.read(copy, as_version=4).cells)
        wait_until_serving(url)
        with chromium() as browser:
            page = open_page(browser, url)
            prompts = run_all_cells(page)
            assert len(prompts) == code_cells and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), prompts
            assert error_outputs(page) == []
            # the findings table (DataFrame without an index column) and the score plot are on the page
            header = page.locator(f"{PANEL} .jp-OutputArea-output table thead tr").filter(has_text="message").first
            assert header.locator("th").all_text_contents() == ["severity", "group", "check", "object", "message",
                                                               "evidence"]
            score = page.evaluate(
                """(panel) => {
                    const cells = [...document.querySelector(panel).querySelectorAll('.jp-Cell')];
                    const i = cells.findIndex(c => c.textContent.includes('Score by check group'));
                    const img = cells[i + 1].querySelector('.jp-OutputArea-output img');
                    return img ? [img.naturalWidth, img.naturalHeight] : null;
                }""",
                PANEL,
            )
            assert score is not None and score[0] > 300 and score[1] > 100
            assert page.locator(f"{PANEL} .jp-OutputArea-output").filter(has_text="validation").count() >= 1
            text = page.locator(PANEL).inner_text()
            assert "{'" not in text and '{"' not in text and "Finding(" not in text  # no repr or dict dumps
            header.scroll_into_view_if_needed()
            page.screenshot(path=artifact("lab-validate-cluster.png"), full_page=False)
            page.keyboard.press("Control+s")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                saved = nbformat.read(copy, as_version=4)
                if all(c.get("execution_count") for c in saved.cells if c.cell_type == "code"):
                    break
                time.sleep(0.5)
        assert all(c.get("execution_count") for c in saved.cells if c.cell_type == "code"), "save did not land"
    finally:
        proc.terminate()  # opsbook lab stops its JupyterLab on SIGTERM
        proc.wait(60)
    assert lab_pids(tmp_path) == [], "JupyterLab outlived `opsbook lab`"
    assert git_status() == before  # running and saving in the lab left the checkout as it was
