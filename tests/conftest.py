"""Shared fixtures: one real sandbox (kube-apiserver + kwok nodes + moto server) per test session.

The sandbox is built and started here if needed; a missing toolchain is built,
never skipped. Set OPSBOOK_KEEP_SANDBOX=1 to leave it running after the session
(faster reruns while developing); CI always tears it down.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from opsbook.k8s.client import api_client
from opsbook.sandbox import Sandbox
from opsbook.sandbox.cluster import Timing

ROOT = Path(__file__).resolve().parents[1]
# With pytest-xdist (`make test` runs two workers) every worker has a sandbox of its own.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_SANDBOX = os.environ.get("OPSBOOK_TEST_SANDBOX", "opsbook-test") + (f"-{_WORKER}" if _WORKER else "")
# Fast failure timing: 10 s grace, 10 s tolerations (production: 40-50 s and 300 s).
TEST_TIMING = Timing(heartbeat_factor=0.25, not_ready_toleration_s=10, unreachable_toleration_s=10)

# Kernels started by papermill/nbval find `python` on PATH: make it this venv's.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the create-cluster tests last: they reshape the shared sandbox and leave kops-made
    AWS resources in moto, which every whole-cluster check after them would (rightly) see."""
    items.sort(key=lambda item: item.path.name.startswith("test_create_"))


def _up(name: str) -> Sandbox:
    sb = Sandbox(name)
    if os.environ.get("OPSBOOK_KEEP_SANDBOX") != "1":
        sb.down()  # a sandbox left by an earlier, interrupted session starts the suite from its state
    sb.up(timing=TEST_TIMING, progress=lambda m: print(f"[sandbox {name}] {m}", file=sys.stderr))
    return sb


def _down(sb: Sandbox) -> None:
    if os.environ.get("OPSBOOK_KEEP_SANDBOX") != "1" or os.environ.get("CI"):
        sb.down()


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[Sandbox]:
    """The sandbox most test modules share: they leave it as they found it."""
    sb = _up(TEST_SANDBOX)
    sb.activate()  # exported so kernels started by papermill/nbval inherit it
    yield sb
    _down(sb)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """The shared sandbox, or a fresh one for a module marked ``private_sandbox``.

    A module is marked when what it does cannot be fully undone (instances terminated and replaced in
    moto, nodes re-registered, clusters upgraded): later modules assert whole-cluster counts and must
    find the sandbox as seeded. A private sandbox takes ~7 s to start; its environment is exported for
    the module and the shared one's restored afterwards.
    """
    if request.node.get_closest_marker("private_sandbox") is None:
        yield request.getfixturevalue("shared_sandbox")
        return
    saved = dict(os.environ)
    sb = _up(f"{TEST_SANDBOX}-{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}")
    sb.activate()
    try:
        yield sb
    finally:
        _down(sb)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def api(sandbox: Sandbox) -> Iterator[k8s.ApiClient]:
    st = sandbox.state()
    assert st is not None
    client = api_client(st.kubeconfig)
    yield client
    client.close()


@pytest.fixture
def namespace(api: k8s.ApiClient) -> Iterator[str]:
    """A fresh uuid-named namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(api)
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels={"opsbook-test": "1"})))
    yield name
    core.delete_namespace(name, grace_period_seconds=0)
    # wait until it is gone, so later tests (validation of the whole cluster) never see its leftovers
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if name not in {n.metadata.name for n in core.list_namespace().items}:
            return
        time.sleep(0.5)
