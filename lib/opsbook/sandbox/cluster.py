"""The sandbox's Kubernetes: a real control plane started by ``kwokctl --runtime binary``.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real
binaries built by :mod:`opsbook.sandbox.toolchain`; kwok's controller plays the
kubelets of simulated nodes (those annotated ``kwok.x-k8s.io/node=fake``), with
the Stages in ``opsbook/data/kwok-stages.yaml``: kwok's defaults plus
``pod-ready-again``, which re-reports a pod's readiness when its node comes back
as a reconnecting kubelet would. A lost node is rehearsed by taking its Lease
away from kwok (:func:`opsbook.sandbox.faults.stop_heartbeat`); nothing else stops.

Timing: production kubelets renew their Lease every 10 s and the node controller
waits ``node-monitor-grace-period`` (40 s; 50 s from 1.32) before marking a node
Unknown; pods tolerate ``not-ready``/``unreachable`` for 300 s
(``--default-*-toleration-seconds``). kwokctl's ``--heartbeat-factor`` scales the
lease, status frequency and grace period together (1.0 = production); tests use
0.25 (≈10 s grace) and short toleration seconds so a node failure plays out in
well under a minute.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from opsbook.data import read_text
from opsbook.errors import SandboxError
from opsbook.k8s.client import api_client
from opsbook.procs import free_port, pid_alive, read_pid, spawn, terminate, wait_for
from opsbook.sandbox.toolchain import Toolchain

log = logging.getLogger(__name__)

MANAGED_ANNOTATION = "kwok.x-k8s.io/node"
MANAGED_VALUE = "fake"
READY_AGAIN_STAGE = "pod-ready-again"

PRODUCTION_TIMING = {
    "heartbeat_factor": 1.0,  # 10 s lease renewals
    "node_monitor_grace_period_s": 40,  # 50 s from Kubernetes 1.32
    "not_ready_toleration_s": 300,
    "unreachable_toleration_s": 300,
}


def kwok_stages() -> str:
    """The kwok Stage documents the sandbox runs (YAML, several documents)."""
    return read_text("kwok-stages.yaml")


@dataclass(frozen=True)
class Timing:
    """Node-failure timing knobs of the sandbox cluster."""

    heartbeat_factor: float = 0.25
    not_ready_toleration_s: int = 10
    unreachable_toleration_s: int = 10

    @property
    def node_monitor_grace_period_s(self) -> float:
        """Grace period the node controller waits before marking a silent node Unknown."""
        return 40 * self.heartbeat_factor


def kwok_env(tc: Toolchain, workdir: Path) -> dict[str, str]:
    """Environment for kwokctl: our kubectl first on PATH, a private work dir."""
    env = dict(os.environ)
    env["PATH"] = f"{tc.kubectl.parent}{os.pathsep}{env.get('PATH', '')}"
    env["KWOK_WORKDIR"] = str(workdir)
    return env


def _kwokctl(
    tc: Toolchain, workdir: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    cmd = [str(tc.kwokctl), *args]
    log.debug("running %s", cmd)
    return subprocess.run(
        cmd, env=kwok_env(tc, workdir), capture_output=True, text=True, timeout=timeout, check=False
    )


def kwok_create(
    tc: Toolchain,
    workdir: Path,
    name: str,
    kubeconfig: Path,
    timing: Timing,
    port: int | None = None,
    cert_sans: tuple[str, ...] = (),
) -> None:
    """Create (or reuse) a kwokctl cluster with the built binaries.

    ``cert_sans`` are extra names on the API server's certificate (kwokctl's
    ``kubeApiserverCertSANs``), e.g. ``api.<cluster>`` and ``api.internal.<cluster>`` so that
    ``kops validate cluster`` (which verifies the server under those names) can connect.
    """
    # kwokctl v0.8.0's --extra-args panics when two components each get several args
    # (it indexes patches by flag position), so the patches go in a config file instead.
    patches = {
        "kube-apiserver": {
            "default-not-ready-toleration-seconds": str(timing.not_ready_toleration_s),
            "default-unreachable-toleration-seconds": str(timing.unreachable_toleration_s),
        },
        # One replica each: without leader election they survive an apiserver restart instead of
        # exiting on a lost lease (kubelet would restart them in a kops cluster; nothing does here).
        "kube-controller-manager": {"leader-elect": "false"},
        "kube-scheduler": {"leader-elect": "false"},
        "kwok-controller": {
            "manage-all-nodes": "false",
            "manage-nodes-with-annotation-selector": f"{MANAGED_ANNOTATION}={MANAGED_VALUE}",
        },
    }
    lines = ["kind: KwokctlConfiguration", "apiVersion: config.kwok.x-k8s.io/v1alpha1", "options:"]
    if cert_sans:
        lines += ["  kubeApiserverCertSANs:"] + [f"  - {json.dumps(n)}" for n in cert_sans]
    # kwokctl hands out component ports sequentially from 32750 up: sandboxes created at the same
    # moment (parallel test sessions) collide and a component dies on "address already in use".
    # Ports the OS picked are unlikely to collide.
    for option in ("etcdPort", "etcdPeerPort", "kubeControllerManagerPort", "kubeSchedulerPort", "kwokControllerPort"):
        lines.append(f"  {option}: {free_port()}")
    lines.append("componentsPatches:")
    for comp, kv in patches.items():
        lines += [f"- name: {comp}", "  extraArgs:"]
        lines += [f"  - key: {k}\n    value: {json.dumps(v)}" for k, v in kv.items()]
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{name}-kwokctl.yaml"
    config.write_text("\n".join(lines) + "\n---\n" + kwok_stages())  # no empty YAML document
    args = [
        "--config",
        str(config),
        "create",
        "cluster",
        "--name",
        name,
        "--runtime",
        "binary",
        "--kube-apiserver-binary",
        str(tc.kube_apiserver),
        "--kube-controller-manager-binary",
        str(tc.kube_controller_manager),
        "--kube-scheduler-binary",
        str(tc.kube_scheduler),
        "--kwok-controller-binary",
        str(tc.kwok),
        "--etcd-binary",
        str(tc.etcd),
        "--kubeconfig",
        str(kubeconfig),
        "--heartbeat-factor",
        str(timing.heartbeat_factor),
        "--wait",
        "120s",
        "--timeout",
        "300s",
    ]
    if port:
        args += ["--kube-apiserver-port", str(port)]
    proc = _kwokctl(tc, workdir, *args, timeout=420)
    if proc.returncode != 0:
        logs = workdir / "clusters" / name / "logs"
        raise SandboxError(
            f"kwokctl could not create the sandbox cluster (exit {proc.returncode}). "
            f"Component logs are in {logs}.\n{(proc.stderr or proc.stdout).strip()[-3000:]}"
        )


def kwok_delete(tc: Toolchain, workdir: Path, name: str, kubeconfig: Path) -> None:
    """Delete the kwokctl cluster and stop all its processes."""
    if not (workdir / "clusters" / name).exists():
        return
    proc = _kwokctl(tc, workdir, "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig))
    if proc.returncode != 0:
        raise SandboxError(f"kwokctl delete cluster failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    # kwokctl kills by pid file; make sure a restarted component (new pid) is gone too.
    for pid_file in (workdir / "clusters" / name / "pids").glob("*.pid"):
        pid = read_pid(pid_file)
        if pid:
            terminate(pid)
    shutil.rmtree(workdir / "clusters" / name, ignore_errors=True)


def cluster_dir(workdir: Path, name: str) -> Path:
    """Kwokctl's directory for one cluster (pids/, logs/, kwok.yaml, pki/)."""
    return workdir / "clusters" / name


def component_pid(workdir: Path, name: str, component: str) -> int | None:
    """Pid of a running control-plane component, e.g. ``kube-apiserver``."""
    return read_pid(cluster_dir(workdir, name) / "pids" / f"{component}.pid")


def components_running(workdir: Path, name: str) -> dict[str, bool]:
    """Which of the cluster's component processes are alive."""
    pids = cluster_dir(workdir, name) / "pids"
    out: dict[str, bool] = {}
    for pid_file in sorted(pids.glob("*.pid")):
        pid = read_pid(pid_file)
        out[pid_file.stem] = pid is not None and pid_alive(pid)
    return out


def save_cmdlines(workdir: Path, name: str) -> None:
    """Remember every running component's command line, so a dead one can be restarted."""
    pids = cluster_dir(workdir, name) / "pids"
    for pid_file in pids.glob("*.pid"):
        pid = read_pid(pid_file)
        if pid is not None:
            argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
            (pids / f"{pid_file.stem}.cmdline").write_text("\0".join(argv))


def ensure_components(workdir: Path, name: str) -> list[str]:
    """Restart any component that died (as kubelet restarts static pods); return their names."""
    restarted = []
    for comp, alive in components_running(workdir, name).items():
        saved = cluster_dir(workdir, name) / "pids" / f"{comp}.cmdline"
        if not alive and saved.exists():
            start_component(workdir, name, comp)
            restarted.append(comp)
    return restarted


def stop_component(workdir: Path, name: str, component: str, timeout: float = 30) -> list[str]:
    """Stop one component (SIGTERM, SIGKILL after ``timeout`` s); return the command line to start it again."""
    pid = component_pid(workdir, name, component)
    if pid is None:
        raise SandboxError(f"{component} is not running in sandbox cluster {name!r}: nothing to stop")
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    argv = [a.decode() for a in cmdline if a]
    (cluster_dir(workdir, name) / "pids" / f"{component}.cmdline").write_text("\0".join(argv))
    terminate(pid, timeout=timeout)
    return argv


def ensure_stages(workdir: Path, name: str) -> bool:
    """Give a cluster created before ``pod-ready-again`` existed that Stage; restart kwok to load it.

    Returns:
        Whether the Stage was added.
    """
    path = cluster_dir(workdir, name) / "kwok.yaml"
    if not path.exists() or READY_AGAIN_STAGE in path.read_text():
        return False
    ours = kwok_stages().rsplit("\n---\n", 1)[-1]
    path.write_text(path.read_text().rstrip("\n") + "\n---\n" + ours)
    if component_pid(workdir, name, "kwok-controller") is not None:
        stop_component(workdir, name, "kwok-controller", timeout=1.0)
    start_component(workdir, name, "kwok-controller")
    return True


def start_component(workdir: Path, name: str, component: str) -> int:
    """Start a component stopped by :func:`stop_component`, with the same arguments."""
    base = cluster_dir(workdir, name)
    if component_pid(workdir, name, component) is not None:
        raise SandboxError(f"{component} is already running in sandbox cluster {name!r}")
    saved = base / "pids" / f"{component}.cmdline"
    if not saved.exists():
        raise SandboxError(f"no saved command line for {component}; was it stopped by opsbook?")
    argv = saved.read_text().split("\0")
    return spawn(argv, base / "logs" / f"{component}.log", base / "pids" / f"{component}.pid", cwd=base)


def wait_api(kubeconfig: Path, timeout: float = 60) -> None:
    """Wait until the API server at ``kubeconfig`` answers ``/readyz``."""
    from kubernetes import client as k8s

    def ready() -> bool:
        api = api_client(str(kubeconfig))
        try:
            names = {n.metadata.name for n in k8s.CoreV1Api(api).list_namespace(_request_timeout=2).items}
            return "default" in names and "kube-system" in names
        finally:
            api.close()

    wait_for(ready, timeout, f"the Kubernetes API server ({kubeconfig}) to become ready")
