"""Alerts and heartbeat: a real local HTTP receiver gets one message per change of state, never the URL saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsbook.engine.notify import AlertConfig, deliver, state_change
from opsbook.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
FAILING = ROOT / "tests" / "notebooks" / "failing.ipynb"


class Receiver:
    """A real HTTP server that records every POST; paths under /flaky/ answer 500, 500, then 200, and again."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path.startswith("/flaky/") and outer.hits[self.path] % 3:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.got.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self, prefix: str) -> list[dict[str, Any]]:
        return [b for p, b in self.got if p.startswith(prefix)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _run(out: Path, fail_at: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsbook.cli", "run", str(FAILING), "-p", f"fail_at={fail_at}",
         "--output", str(out), *extra],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.sandbox
@pytest.mark.notebook
def test_one_message_per_change_of_state_and_a_heartbeat_every_run(
    sandbox: Sandbox, receiver: Receiver, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    slack_url = f"slack+{receiver.url}/services/T000/B000/{token}"
    json_url = f"{receiver.url}/flaky/hook-{token}"  # 500, 500, then 200: retried with backoff
    heartbeat = f"{receiver.url}/ping/{token}"
    env = dict(os.environ, OPSBOOK_NOTIFY=json_url, OPSBOOK_NOTIFY_BACKOFF_S="0.05")
    out = tmp_path / "reports"
    args = ("--notify", slack_url, "--heartbeat", heartbeat)
    codes = []
    consoles = ""
    for fail_at in ("none", "divide", "divide", "none"):
        r = _run(out, fail_at, env, *args)
        codes.append(r.returncode)
        consoles += r.stdout + r.stderr
    assert codes == [0, 3, 3, 0]

    slack, generic = receiver.paths("/services/"), receiver.paths("/flaky/")
    assert len(receiver.paths("/ping/")) == 4  # every finished run
    assert [m["event"] for m in generic] == ["failing", "recovered"]  # none for the repeated failure
    assert receiver.hits[f"/flaky/hook-{token}"] == 2 * 3  # two failed attempts before each delivery
    assert len(slack) == 2 and set(slack[0]) == {"text", "blocks"}
    assert "failing" in slack[0]["text"] and "is failing" in slack[0]["text"]
    assert "recovered" in slack[1]["text"]
    first = generic[0]
    assert first["runbook"] == "failing" and first["status"] == "failed"
    assert first["failed_step"] == "Divide the work"
    assert first["cluster"]["cluster_name"] == sandbox.state().cluster_name  # type: ignore[union-attr]
    assert Path(first["report"]).exists() and first["report"].endswith(".html")
    assert [p["status"] for p in receiver.paths("/ping/")] == ["ok", "failed", "failed", "ok"]

    summaries = [json.loads(p.read_text()) for p in sorted((out / "failing").glob("*.json"))]
    assert [len(s["notifications"]) for s in summaries] == [1, 3, 1, 3]
    assert all(d["ok"] for s in summaries for d in s["notifications"])
    assert {d["target"] for d in summaries[1]["notifications"]} == {"notify[1]", "notify[2]", "heartbeat"}
    for path in out.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"webhook URL saved in {path.name}"
    assert token not in consoles and "notify[1]: sent" in consoles


@pytest.mark.sandbox
@pytest.mark.notebook
def test_an_undeliverable_alert_is_recorded_and_never_fails_the_run(
    sandbox: Sandbox, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.server.shutdown()
    receiver.server.server_close()  # nobody listens there any more
    secret = uuid.uuid4().hex
    env = dict(os.environ, OPSBOOK_NOTIFY_BACKOFF_S="0.01")
    r = _run(tmp_path, "none", env, "--heartbeat", f"{receiver.url}/ping/{secret}")
    assert r.returncode == 0, r.stderr
    summary = json.loads(next((tmp_path / "failing").glob("*.json")).read_text())
    assert summary["status"] == "ok"
    [hb] = summary["notifications"]
    assert hb["target"] == "heartbeat" and hb["ok"] is False and hb["attempts"] == 4
    assert "Connection refused" in hb["error"] or "ConnectionRefused" in hb["error"]
    assert secret not in r.stdout + r.stderr and "NOT delivered after 4 attempts" in r.stderr


def test_state_change_rules() -> None:
    def run(status: str, *checks: tuple[str, str]) -> dict[str, Any]:
        return {"status": status, "findings": [{"check": c, "severity": s, "object": ""} for c, s in checks]}

    ok, high = run("ok", ("a", "low")), run("findings", ("nodes.ready", "high"))
    assert state_change(ok, None, "high") is None  # first run, healthy
    assert state_change(high, None, "high").event == "failing"  # type: ignore[union-attr]
    assert state_change(high, ok, "high").event == "failing"  # type: ignore[union-attr]
    assert state_change(high, high, "high") is None
    worse = run("findings", ("nodes.ready", "high"), ("pods.critical", "critical"))
    change = state_change(worse, high, "high")
    assert change is not None and change.event == "new-findings"
    assert [f["check"] for f in change.new_findings] == ["pods.critical"]
    assert state_change(run("findings", ("x", "medium"), ("nodes.ready", "high")), high, "high") is None
    assert state_change(ok, high, "high").event == "recovered"  # type: ignore[union-attr]
    assert state_change(run("failed"), high, "high").event == "failing"  # type: ignore[union-attr]


def test_a_client_error_is_not_retried_and_the_url_is_not_in_the_error() -> None:
    import urllib.error

    calls = []

    def post(url: str, body: bytes, timeout: float) -> int:
        calls.append(url)
        raise urllib.error.HTTPError(url, 404, f"no hook at {url}", {}, None)  # type: ignore[arg-type]

    d = deliver("https://hooks.example/secret-path", {"text": "x"}, "notify[1]", "json",
                AlertConfig(attempts=4, backoff_s=0), post)  # fmt: skip
    assert (d.ok, d.attempts, d.status, len(calls)) == (False, 1, 404, 1)
    assert "secret-path" not in (d.error or "")
