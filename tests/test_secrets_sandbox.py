"""Planted secrets on the sandbox (pod env, pod args, ConfigMaps, event messages) reach no saved byte
and no sent message, while nothing says what they are in the environment of the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client as k8s

from opsbook.sandbox import Sandbox
from secret_corpus import corpus
from test_notify import Receiver

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]
CARELESS = ROOT / "tests" / "notebooks" / "careless.ipynb"


def _plant(api: k8s.ApiClient, ns: str, shapes: list[tuple[str, str, str]]) -> None:
    core = k8s.CoreV1Api(api)
    texts = [t for _, t, _ in shapes]
    core.create_namespaced_config_map(
        ns, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="app-config"),
                            data={f"k{i}": t for i, t in enumerate(texts)}),
    )  # fmt: skip
    env = [k8s.V1EnvVar(name=f"APP_SETTING_{i}", value=t) for i, t in enumerate(texts)]
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="orders"),
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(name="app", image="orders:1", env=env, args=["--db", texts[4], "--mq", texts[6]])
            ],
            tolerations=[k8s.V1Toleration(operator="Exists")],
        ),
    )
    core.create_namespaced_pod(ns, pod)
    for i, t in enumerate(texts):
        core.create_namespaced_event(
            ns,
            k8s.CoreV1Event(
                metadata=k8s.V1ObjectMeta(name=f"orders.leak{i}"),
                involved_object=k8s.V1ObjectReference(kind="Pod", name="orders", namespace=ns),
                reason="BackOff", type="Warning", message=f"container failed: {t}",
            ),
        )  # fmt: skip


def test_planted_corpus_is_in_no_saved_byte_and_no_sent_message(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str, tmp_path: Path
) -> None:
    shapes = corpus()
    assert len(shapes) >= 12
    _plant(api, namespace, shapes)
    receiver = Receiver()
    try:
        out = tmp_path / "reports"
        r = subprocess.run(
            [sys.executable, "-m", "opsbook.cli", "run", str(CARELESS), "-p", f"namespace={namespace}",
             "--output", str(out), "--notify", f"{receiver.url}/hook"],
            capture_output=True, text=True, env=dict(os.environ), timeout=600, cwd=ROOT,
        )  # fmt: skip
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert r.returncode == 1, r.stderr  # the high finding fails the run: one alert is sent
    [(path, message)] = receiver.got
    assert path == "/hook" and "container failed" in message["text"]
    summary = json.loads(next((out / "careless").glob("*.json")).read_text())
    assert "container failed" in summary["findings"][0]["message"]
    ipynb = next((out / "careless").glob("*.ipynb")).read_text()
    assert "APP_SETTING_0" in ipynb and "app-config/k5" in ipynb  # the dump really is in the report
    saved = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    sent = json.dumps(message).encode()
    for shape, _text, secret in shapes:
        for name, data in [*saved.items(), ("alert message", sent), ("console", (r.stdout + r.stderr).encode())]:
            assert secret.encode() not in data, f"{shape} leaked into {name}"
            escaped = json.dumps(secret)[1:-1].encode()  # as a JSON string would hold it
            assert escaped not in data, f"{shape} leaked (escaped) into {name}"
