"""The sandbox itself: its state on disk, its env file, and :class:`Sandbox` (up, down, status)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from opsbook.errors import SandboxError
from opsbook.gobuild import cache_root
from opsbook.kops.spec import ClusterSpec
from opsbook.procs import free_port, wait_for
from opsbook.sandbox import cluster as kc
from opsbook.sandbox import moto_server
from opsbook.sandbox.toolchain import Toolchain, ensure_toolchain

log = logging.getLogger("opsbook.sandbox")

DEFAULT_NAME = "opsbook"
FAKE_ACCESS_KEY = "testing"  # moto accepts any credentials; these are not secrets
FAKE_SECRET_KEY = "testing"

Progress = Callable[[str], None]


def state_dir(name: str = DEFAULT_NAME) -> Path:
    """Where a sandbox keeps its kubeconfig, env file, logs and pid files."""
    return cache_root() / "sandbox" / name


def env_file(name: str = DEFAULT_NAME) -> Path:
    """The shell-sourceable env file of a sandbox."""
    return state_dir(name) / "env.sh"


@dataclass
class SandboxState:
    """What ``up`` started, saved as ``sandbox.json`` beside the env file."""

    name: str
    backend: str  # "kwok" | "kind" | "kubeconfig"
    kubeconfig: str
    aws_endpoint: str
    region: str
    cluster_name: str
    spec: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs, kops and kubectl at the sandbox."""
        tc = Toolchain.expected()
        return {
            "KUBECONFIG": self.kubeconfig,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "S3_ENDPOINT": self.aws_endpoint,
            "S3_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "S3_REGION": self.region,
            "KOPS_STATE_STORE": "s3://opsbook-kops-state",
            "KOPS_CLUSTER_NAME": self.cluster_name,
            "OPSBOOK_SANDBOX": self.name,
            "OPSBOOK_KUBECTL": str(tc.kubectl)
            if tc.kubectl.exists()
            else (shutil.which("kubectl") or "kubectl"),
        }


class Sandbox:
    """Start, inspect and stop one named sandbox."""

    def __init__(self, name: str = DEFAULT_NAME) -> None:
        self.name = name
        self.dir = state_dir(name)
        self.kubeconfig = self.dir / "kubeconfig"
        self.kwok_workdir = self.dir / "kwok"

    # -- state -----------------------------------------------------------------
    def state(self) -> SandboxState | None:
        """The saved state of a sandbox that was brought up, or None."""
        path = self.dir / "sandbox.json"
        if not path.exists():
            return None
        return SandboxState(**json.loads(path.read_text()))

    def _save(self, st: SandboxState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "sandbox.json.tmp"
        tmp.write_text(json.dumps(asdict(st), indent=2))
        tmp.replace(self.dir / "sandbox.json")
        lines = [
            "# opsbook sandbox environment: source this file (`source " + str(env_file(self.name)) + "`)"
        ]
        lines += [f"export {k}={_shell_quote(v)}" for k, v in st.env().items()]
        tc = Toolchain.expected()
        if tc.kubectl.exists():
            lines.append(f'export PATH={_shell_quote(str(tc.kubectl.parent))}:"$PATH"')
        tmp_env = self.dir / "env.sh.tmp"
        tmp_env.write_text("\n".join(lines) + "\n")
        tmp_env.replace(env_file(self.name))

    def activate(self) -> dict[str, str]:
        """Export the sandbox's environment into this process (for boto3, kubernetes, papermill kernels)."""
        st = self.state()
        if st is None:
            raise SandboxError(f"sandbox {self.name!r} is not up: run `opsbook sandbox up` first")
        env = st.env()
        os.environ.update(env)
        return env

    # -- lifecycle -------------------------------------------------------------
    def up(
        self,
        spec: ClusterSpec | None = None,
        timing: kc.Timing | None = None,
        kubeconfig: Path | None = None,
        backend: str = "auto",
        progress: Progress | None = None,
    ) -> SandboxState:
        """Bring the sandbox up (safe to call again: running parts are reused).

        Args:
            spec: cluster shape; defaults to the team's original kops parameters, 3 nodes.
            timing: node-failure timing (fast test defaults; ``kc.PRODUCTION_TIMING`` documents production).
            kubeconfig: use this existing cluster instead of starting one (nothing is seeded into it).
            backend: "auto", "kwok", "kind" or "kubeconfig".
            progress: called with one line per step.
        """
        say: Progress = progress or (lambda m: log.info("%s", m))
        spec = spec or ClusterSpec()
        timing = timing or kc.Timing()
        t0 = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        previous = self.state()
        if previous and (previous.spec and previous.spec.get("name") != spec.name):
            say(f"note: sandbox already holds cluster {previous.spec.get('name')}; reusing it")
            spec = ClusterSpec(**_spec_from_dict(previous.spec))

        backend = self._choose_backend(backend, kubeconfig, previous)
        say(f"backend: {backend}")

        _, port = moto_server.start(self.dir)
        endpoint = f"http://127.0.0.1:{port}"
        say(f"moto server: {endpoint}")

        kcfg = self._start_cluster(backend, kubeconfig, timing, say, api_names(spec.name))
        st = SandboxState(
            name=self.name,
            backend=backend,
            kubeconfig=str(kcfg),
            aws_endpoint=endpoint,
            region=spec.region,
            cluster_name=spec.name,
            spec=asdict(spec),
            timing=asdict(timing),
            started_at=previous.started_at if previous else time.time(),
        )
        self._save(st)
        self.activate()

        from opsbook.k8s.client import api_client
        from opsbook.sandbox import seed

        say(f"seeding AWS (moto) for {spec.name}: VPC {spec.network_cidr}, ASGs per instance group")
        instances = seed.seed_aws(spec)
        if backend != "kubeconfig":
            api = api_client(str(kcfg))
            try:
                say(f"registering {len(instances)} simulated nodes")
                seed.seed_nodes(api, spec, instances)
                by_ig: dict[str, list[str]] = {}
                for i in instances:
                    by_ig.setdefault(i.instance_group, []).append(i.private_dns)
                seed.seed_system_workloads(api, spec, by_ig)
                self._wait_nodes_ready(api, len(instances))
            finally:
                api.close()
        say(f"sandbox {self.name!r} up in {time.monotonic() - t0:.1f}s; env file: {env_file(self.name)}")
        return st

    def _choose_backend(self, backend: str, kubeconfig: Path | None, previous: SandboxState | None) -> str:
        if kubeconfig is not None:
            return "kubeconfig"
        if backend != "auto":
            return backend
        if previous is not None:
            return previous.backend
        if shutil.which("kind") and shutil.which("docker"):
            ok = subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
            if ok:
                return "kind"
        return "kwok"

    def _start_cluster(
        self,
        backend: str,
        kubeconfig: Path | None,
        timing: kc.Timing,
        say: Progress,
        cert_sans: tuple[str, ...] = (),
    ) -> Path:
        if backend == "kubeconfig":
            if kubeconfig is None or not kubeconfig.exists():
                raise SandboxError(
                    f"--kubeconfig {kubeconfig} does not exist: give the path of a kubeconfig file"
                )
            kc.wait_api(kubeconfig, timeout=15)
            return kubeconfig
        if backend == "kind":
            return self._start_kind(timing, say)
        tc = ensure_toolchain(say)
        running = kc.components_running(self.kwok_workdir, self.name)
        if running and all(running.values()) and self.kubeconfig.exists():
            say(f"cluster {self.name!r} already running ({', '.join(sorted(running))})")
        elif running and (kc.cluster_dir(self.kwok_workdir, self.name) / "pids" / "etcd.cmdline").exists():
            restarted = kc.ensure_components(self.kwok_workdir, self.name)
            say(f"restarted stopped components of cluster {self.name!r}: {', '.join(restarted)}")
        elif running:
            say(f"starting stopped cluster {self.name!r}")
            proc = subprocess.run(
                [str(tc.kwokctl), "start", "cluster", "--name", self.name],
                env=kc.kwok_env(tc, self.kwok_workdir),
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise SandboxError(f"kwokctl start cluster failed: {proc.stderr.strip()[-2000:]}")
        else:
            say(
                f"starting control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) "
                f"heartbeat-factor={timing.heartbeat_factor}"
            )
            kc.kwok_create(
                tc, self.kwok_workdir, self.name, self.kubeconfig, timing, port=free_port(), cert_sans=cert_sans
            )
        kc.wait_api(self.kubeconfig, timeout=90)
        kc.save_cmdlines(self.kwok_workdir, self.name)
        if kc.ensure_stages(self.kwok_workdir, self.name):
            say(f"added kwok Stage {kc.READY_AGAIN_STAGE!r} to cluster {self.name!r} (created before it existed)")
        return self.kubeconfig

    def _start_kind(self, timing: kc.Timing, say: Progress) -> Path:  # pragma: no cover - needs Docker
        clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=False)
        if self.name not in clusters.stdout.split():
            say(f"creating kind cluster {self.name!r}")
            subprocess.run(
                [
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    self.name,
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--wait",
                    "120s",
                ],
                check=True,
            )
        tc = ensure_toolchain(say)
        # simulated kops nodes on top of kind: run kwok's controller locally against it
        from opsbook.procs import read_pid, spawn

        if read_pid(self.dir / "kwok.pid") is None:
            stages = self.dir / "kwok-stages.yaml"
            stages.write_text(kc.kwok_stages())
            spawn(
                [
                    str(tc.kwok),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--config={stages}",
                    "--manage-all-nodes=false",
                    f"--manage-nodes-with-annotation-selector={kc.MANAGED_ANNOTATION}={kc.MANAGED_VALUE}",
                    f"--node-lease-duration-seconds={max(1, int(40 * timing.heartbeat_factor))}",
                ],
                self.dir / "kwok.log",
                self.dir / "kwok.pid",
            )
        return self.kubeconfig

    def _wait_nodes_ready(self, api: k8s.ApiClient, count: int, timeout: float = 60) -> None:
        core = k8s.CoreV1Api(api)

        def ready() -> bool:
            n = 0
            for node in core.list_node().items:
                for c in node.status.conditions or []:
                    if c.type == "Ready" and c.status == "True":
                        n += 1
            return n >= count

        wait_for(ready, timeout, f"{count} nodes to become Ready")

    def down(self, progress: Progress | None = None) -> list[str]:
        """Stop everything ``up`` started and remove its state; return what was stopped."""
        say: Progress = progress or (lambda m: log.info("%s", m))
        stopped: list[str] = []
        st = self.state()
        backend = st.backend if st else "kwok"
        if backend == "kwok" and (self.kwok_workdir / "clusters" / self.name).exists():
            tc = Toolchain.expected()
            if tc.kwokctl.exists():
                kc.kwok_delete(tc, self.kwok_workdir, self.name, self.kubeconfig)
            stopped.append(f"cluster {self.name} (kwok)")
        elif backend == "kind":  # pragma: no cover - needs Docker
            from opsbook.procs import read_pid, terminate

            pid = read_pid(self.dir / "kwok.pid")
            if pid:
                terminate(pid)
            subprocess.run(["kind", "delete", "cluster", "--name", self.name], check=False)
            stopped.append(f"cluster {self.name} (kind)")
        if moto_server.stop(self.dir):
            stopped.append("moto server")
        for f in ("sandbox.json", "env.sh", "kubeconfig", "moto.port"):
            (self.dir / f).unlink(missing_ok=True)
        say("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return stopped

    def status(self) -> dict[str, Any]:
        """What is up: backend, components (alive or not), endpoints, node count."""
        st = self.state()
        out: dict[str, Any] = {"name": self.name, "up": False, "state_dir": str(self.dir)}
        if st is None:
            return out
        from opsbook.procs import read_pid

        out.update(
            {
                "backend": st.backend,
                "kubeconfig": st.kubeconfig,
                "aws_endpoint": st.aws_endpoint,
                "cluster_name": st.cluster_name,
                "env_file": str(env_file(self.name)),
            }
        )
        out["moto"] = read_pid(self.dir / "moto.pid") is not None
        out["components"] = (
            kc.components_running(self.kwok_workdir, self.name) if st.backend == "kwok" else {}
        )
        try:
            from opsbook.k8s.client import api_client

            api = api_client(st.kubeconfig)
            try:
                nodes = k8s.CoreV1Api(api).list_node(_request_timeout=3).items
                out["nodes"] = len(nodes)
                out["api"] = True
            finally:
                api.close()
        except Exception as e:
            out["api"] = False
            out["api_error"] = str(e)[:200]
        out["up"] = bool(out["moto"] and out.get("api"))
        return out


def api_names(cluster: str) -> tuple[str, ...]:
    """The names kops uses for the API server (``kops validate`` verifies the server as the second)."""
    return (f"api.{cluster}", f"api.internal.{cluster}")


def _spec_from_dict(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    for k in ("zones", "master_zones"):
        if k in d:
            d[k] = tuple(d[k])
    return d


def _shell_quote(v: str) -> str:
    return "'" + v.replace("'", "'\\''") + "'"


def active_env(name: str | None = None) -> dict[str, str]:
    """The environment of a running sandbox (``$OPSBOOK_SANDBOX`` or the default one)."""
    sb = Sandbox(name or os.environ.get("OPSBOOK_SANDBOX", DEFAULT_NAME))
    st = sb.state()
    if st is None:
        raise SandboxError(f"sandbox {sb.name!r} is not up: run `opsbook sandbox up`")
    return st.env()
