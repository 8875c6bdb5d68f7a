"""`opsbook lab` serves notebooks/ over JupyterLab's HTTP API, with the sandbox environment."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from opsbook.lab import start_lab
from opsbook.sandbox import Sandbox

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[1]


def test_lab_lists_the_runbook_notebooks_over_http(sandbox: Sandbox) -> None:
    st = sandbox.state()
    assert st is not None
    proc, url = start_lab(st.env(), open_browser=False)
    base, token = url.split("/lab?token=")
    try:
        listing = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(
                    f"{base}/api/contents/", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(req, timeout=2) as r:
                    listing = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, proc.stderr.read().decode()[-2000:] if proc.stderr and proc.poll() else ""
        names = {c["name"] for c in listing["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
        assert "cluster-inventory.ipynb" in names
        # without the token the API refuses
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}/api/contents/", timeout=2)
        assert e.value.code == 403
    finally:
        proc.terminate()
        proc.wait(15)
