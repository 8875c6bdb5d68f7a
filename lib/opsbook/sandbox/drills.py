"""Incident drills on the sandbox: the outages the team has lived through, replayed on demand.

Each drill acts on the local sandbox only, prints what it did and how to undo it,
and is remembered in ``<sandbox dir>/drills.json`` so ``opsbook drill --reset``
can undo all of them. The sandbox's demo workloads (namespace ``taxi``: an API,
RabbitMQ, MongoDB and a push notifier with its TLS certificate) are created on
first use.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from opsbook.errors import BadInput, SandboxError
from opsbook.sandbox import Sandbox, faults

log = logging.getLogger(__name__)

NAMESPACE = "taxi"
QUEUE_NAMESPACE = "RabbitMQ"
QUEUE_METRIC = "MessagesReady"
QUEUE_DIMENSIONS = {"Queue": "TaxiPosition"}


@dataclass(frozen=True)
class DrillResult:
    """What a drill did and how to undo it."""

    scenario: str
    did: list[str]
    undo: str
    started: str
    details: dict[str, Any]


# -- demo workloads ---------------------------------------------------------------------------------


def _deployment(
    name: str,
    image: str,
    replicas: int,
    strategy: str = "RollingUpdate",
    node_selector: dict[str, str] | None = None,
) -> k8s.V1Deployment:
    labels = {"app": name}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels=labels),
            strategy=k8s.V1DeploymentStrategy(type=strategy),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(
                    node_selector=node_selector,
                    containers=[
                        k8s.V1Container(
                            name=name,
                            image=image,
                            resources=k8s.V1ResourceRequirements(
                                requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "512Mi"}
                            ),
                        )
                    ],
                ),
            ),
        ),
    )


def ensure_workloads(api: k8s.ApiClient) -> None:
    """Create the ``taxi`` demo workloads if they are missing (idempotent)."""
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    if NAMESPACE not in {n.metadata.name for n in core.list_namespace().items}:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    have = {d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items}
    wanted = [
        _deployment("taxi-api", "taxi/api:1.4.2", 3),
        _deployment("rabbitmq", "rabbitmq:3.8-management", 1),
        _deployment("mongodb", "mongo:4.4", 1, strategy="Recreate"),
        _deployment("push-notifier", "taxi/push:2.1.0", 1),
    ]
    for d in wanted:
        if d.metadata.name not in have:
            apps.create_namespaced_deployment(NAMESPACE, d)
    secrets = {s.metadata.name for s in core.list_namespaced_secret(NAMESPACE).items}
    if "apns-push-cert" not in secrets:
        cert, key = self_signed("push.taxi.example.com", days_valid=365)
        core.create_namespaced_secret(
            NAMESPACE,
            k8s.V1Secret(
                metadata=k8s.V1ObjectMeta(name="apns-push-cert"),
                type="kubernetes.io/tls",
                string_data={"tls.crt": cert, "tls.key": key},
            ),
        )


def self_signed(common_name: str, days_valid: int, not_before_days: int = 0) -> tuple[str, str]:
    """A self-signed certificate and key (PEM); negative ``days_valid`` makes one already expired."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=max(not_before_days, 1 - min(days_valid, 0)) + 1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=days_valid))
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


# -- helpers ----------------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _kubelet_event(
    api: k8s.ApiClient, pod: k8s.V1Pod, reason: str, message: str, kind: str = "Warning", count: int = 1
) -> None:
    now = dt.datetime.now(dt.UTC)
    k8s.CoreV1Api(api).create_namespaced_event(
        pod.metadata.namespace,
        k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(name=f"{pod.metadata.name}.{uuid.uuid4().hex[:12]}"),
            involved_object=k8s.V1ObjectReference(
                kind="Pod",
                name=pod.metadata.name,
                namespace=pod.metadata.namespace,
                uid=pod.metadata.uid,
                field_path=f"spec.containers{{{pod.spec.containers[0].name}}}",
            ),
            reason=reason,
            message=message,
            type=kind,
            count=count,
            first_timestamp=now,
            last_timestamp=now,
            source=k8s.V1EventSource(component="kubelet", host=pod.spec.node_name),
            reporting_component="kubelet",
            reporting_instance=pod.spec.node_name or "",
        ),
    )


def _new_pods(api: k8s.ApiClient, deployment: str, image: str, timeout: float = 60) -> list[k8s.V1Pod]:
    """Wait for all pods of the deployment's ReplicaSet running ``image`` to start; return them."""
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = apps.read_namespaced_deployment(deployment, NAMESPACE)
        rss = [
            rs
            for rs in apps.list_namespaced_replica_set(NAMESPACE, label_selector=f"app={deployment}").items
            if rs.spec.template.spec.containers[0].image == image
        ]
        if rss:
            h = rss[0].metadata.labels["pod-template-hash"]
            pods = [
                p
                for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"pod-template-hash={h}").items
                if p.spec.node_name and p.status.phase == "Running" and not p.metadata.deletion_timestamp
            ]
            if len(pods) >= (d.spec.replicas or 1):
                return pods
        time.sleep(0.5)
    raise SandboxError(f"the new pods of deployment {deployment} never started")


def _set_image(api: k8s.ApiClient, deployment: str, image: str, cause: str) -> None:
    k8s.AppsV1Api(api).patch_namespaced_deployment(
        deployment,
        NAMESPACE,
        {
            "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
            "spec": {"template": {"spec": {"containers": [{"name": deployment, "image": image}]}}},
        },
    )


def _pod_status(
    api: k8s.ApiClient,
    pod: k8s.V1Pod,
    ready: bool,
    state: dict[str, Any],
    restarts: int,
    last_state: dict[str, Any] | None = None,
) -> None:
    now = _now()
    container = pod.spec.containers[0]
    status: dict[str, Any] = {
        "conditions": [
            {"type": "Ready", "status": str(ready), "lastTransitionTime": now},
            {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": now},
        ],
        "containerStatuses": [
            {
                "name": container.name,
                "image": container.image,
                "imageID": "",
                "ready": ready,
                "restartCount": restarts,
                "started": "running" in state,
                "state": state,
                "lastState": last_state or {},
            }
        ],
    }
    k8s.CoreV1Api(api).patch_namespaced_pod_status(pod.metadata.name, NAMESPACE, {"status": status})


# -- the drills -------------------------------------------------------------------------------------


def drill_master_restart(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """kube-apiserver stops and starts again (the team's "K8s master restart")."""
    t = faults.restart_apiserver(sb, down_seconds=5)
    return DrillResult(
        "master-restart",
        [
            f"stopped kube-apiserver for {t['started_at'] - t['stopped_at']:.0f}s "
            "and started it again (etcd kept the data)",
            "nodes whose lease renewals were missed may show NotReady for a moment; their kubelets "
            "then re-report, and workloads are Ready again within seconds",
        ],
        "nothing to undo: the control plane is back",
        _now(),
        t,
    )


def drill_node_lost(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """A worker's kubelet stops heartbeating: NotReady, tainted, its pods evicted and replaced."""
    core = k8s.CoreV1Api(api)
    pods = [
        p
        for p in core.list_namespaced_pod(NAMESPACE, label_selector="app=taxi-api").items
        if p.spec.node_name
    ]
    if not pods:
        raise SandboxError("no taxi-api pod is scheduled yet; try again in a few seconds")
    node = pods[0].spec.node_name
    faults.stop_heartbeat(sb, api, node)
    return DrillResult(
        "node-lost",
        [
            f"stopped the heartbeats of node {node} (its pods: "
            f"{', '.join(p.metadata.name for p in pods if p.spec.node_name == node)})"
        ],
        f"opsbook drill --reset (resumes {node}'s heartbeats)",
        _now(),
        {"node": node},
    )


def drill_cpu_credits_exhausted(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """RabbitMQ's t2 node runs out of CPU credits; CPU flattens at baseline; the queue backs up."""
    core = k8s.CoreV1Api(api)
    pod = next(
        (
            p
            for p in core.list_namespaced_pod(NAMESPACE, label_selector="app=rabbitmq").items
            if p.spec.node_name
        ),
        None,
    )
    if pod is None:
        raise SandboxError("the rabbitmq pod is not scheduled yet; try again in a few seconds")
    node = core.read_node(pod.spec.node_name)
    instance = node.spec.provider_id.rsplit("/", 1)[1]
    itype = node.metadata.labels.get("node.kubernetes.io/instance-type", "t2.medium")
    series = credit_exhaustion_series(instance, dt.datetime.now(dt.UTC) - dt.timedelta(hours=6))
    st = sb.state()
    written = faults.seed_metrics(series, region=st.region if st else None)
    return DrillResult(
        "cpu-credits-exhausted",
        [
            f"seeded {written} CloudWatch points for {instance} ({itype}, node {node.metadata.name}): credit balance "
            "falls to 0 three hours ago, CPUUtilization then flat at the 20% baseline",
            f"seeded queue depth {QUEUE_NAMESPACE}/{QUEUE_METRIC} {QUEUE_DIMENSIONS} growing after exhaustion",
        ],
        "nothing to undo: the metrics are history (they age out of the analysis window)",
        _now(),
        {"instance_id": instance, "node": node.metadata.name, "points": written},
    )


def credit_exhaustion_series(
    instance_id: str, start: dt.datetime, hours: int = 6
) -> list[faults.MetricSeries]:
    """Six hours of 5-minute metrics: a t2.medium burning credits at 60 % CPU until empty, then throttled.

    t2.medium: 2 vCPU, earns 24 credits/h (0.4 per minute across both vCPUs), baseline 20 %.
    At 60 % on 2 vCPUs it spends 1.2 credits/min and earns 0.4/min: net -0.8/min = -4 per 5 min,
    so a balance of 144 lasts 36 steps (3 h); afterwards CPU is pinned at the 20 % baseline.
    """
    step = dt.timedelta(minutes=5)
    n = hours * 12
    balance, cpu, usage, queue = [], [], [], []
    b = 144.0
    for i in range(n):
        if b > 0:
            cpu.append(60.0)
            usage.append(6.0)
            b = max(0.0, b - 4.0)
        else:
            cpu.append(20.0)
            usage.append(2.0)
        balance.append(b)
        exhausted_for = sum(1 for x in balance if x == 0.0)
        queue.append(120.0 + (exhausted_for * 450.0 if b == 0 else (i % 3) * 10.0))
    dims = {"InstanceId": instance_id}
    return [
        faults.MetricSeries("AWS/EC2", "CPUCreditBalance", dims, start, step, balance, "Count"),
        faults.MetricSeries("AWS/EC2", "CPUCreditUsage", dims, start, step, usage, "Count"),
        faults.MetricSeries("AWS/EC2", "CPUUtilization", dims, start, step, cpu, "Percent"),
        faults.MetricSeries(QUEUE_NAMESPACE, QUEUE_METRIC, QUEUE_DIMENSIONS, start, step, queue, "Count"),
    ]


def _replace_push_cert(api: k8s.ApiClient, days_valid: int, not_before_days: int = 0) -> None:
    """Replace the push notifier's TLS secret with a new self-signed certificate."""
    cert, key = self_signed("push.taxi.example.com", days_valid=days_valid, not_before_days=not_before_days)
    k8s.CoreV1Api(api).replace_namespaced_secret(
        "apns-push-cert",
        NAMESPACE,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name="apns-push-cert"),
            type="kubernetes.io/tls",
            string_data={"tls.crt": cert, "tls.key": key},
        ),
    )


def drill_certificate_expired(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """The push-notification TLS certificate expires (it did, and push notifications stopped)."""
    _replace_push_cert(api, days_valid=-1, not_before_days=365)
    return DrillResult(
        "certificate-expired",
        [f"replaced secret {NAMESPACE}/apns-push-cert with a certificate that expired yesterday"],
        "opsbook drill --reset (issues a fresh one-year certificate)",
        _now(),
        {},
    )


def drill_crashloop_after_deploy(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """A new taxi-api version crash-loops as soon as it is rolled out."""
    _set_image(api, "taxi-api", "taxi/api:1.5.0", "deploy 1.5.0 (new config loader)")
    pods = _new_pods(api, "taxi-api", "taxi/api:1.5.0")
    for pod in pods:
        _pod_status(
            api,
            pod,
            False,
            {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 2m40s restarting failed container",
                }
            },
            5,
            {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": _now(), "finishedAt": _now()}},
        )
        _kubelet_event(api, pod, "BackOff", "Back-off restarting failed container taxi-api", count=5)
    return DrillResult(
        "crashloop-after-deploy",
        [
            "rolled taxi-api to 1.5.0; its new pods crash-loop (exit code 1, 5 restarts) "
            f"({', '.join(p.metadata.name for p in pods)})"
        ],
        "opsbook drill --reset (rolls taxi-api back to 1.4.2)",
        _now(),
        {"pods": [p.metadata.name for p in pods]},
    )


def drill_bad_database_update(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """MongoDB is updated in place; the new pod never passes its readiness probe."""
    _set_image(api, "mongodb", "mongo:5.0", "upgrade MongoDB 4.4 -> 5.0")
    pods = _new_pods(api, "mongodb", "mongo:5.0")
    for pod in pods:
        _pod_status(api, pod, False, {"running": {"startedAt": _now()}}, 0)
        _kubelet_event(
            api,
            pod,
            "Unhealthy",
            "Readiness probe failed: MongoServerError: featureCompatibilityVersion 4.2 is not "
            "supported by this binary",
            count=12,
        )
    return DrillResult(
        "bad-database-update",
        [
            "upgraded mongodb to mongo:5.0 (Recreate strategy: the old pod is gone); the new pod "
            "runs but fails readiness"
        ],
        "opsbook drill --reset (rolls mongodb back to mongo:4.4)",
        _now(),
        {"pods": [p.metadata.name for p in pods]},
    )


DRILLS: dict[str, Callable[[Sandbox, k8s.ApiClient], DrillResult]] = {
    "master-restart": drill_master_restart,
    "node-lost": drill_node_lost,
    "cpu-credits-exhausted": drill_cpu_credits_exhausted,
    "certificate-expired": drill_certificate_expired,
    "crashloop-after-deploy": drill_crashloop_after_deploy,
    "bad-database-update": drill_bad_database_update,
}


def _journal(sb: Sandbox) -> list[dict[str, Any]]:
    path = sb.dir / "drills.json"
    return json.loads(path.read_text()) if path.exists() else []


def _save_journal(sb: Sandbox, entries: list[dict[str, Any]]) -> None:
    (sb.dir / "drills.json").write_text(json.dumps(entries, indent=2, default=str))


def run_drill(scenario: str, sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """Run one drill on the sandbox and remember it for ``reset``."""
    if scenario not in DRILLS:
        raise BadInput(f"no drill called {scenario!r}; choose one of {', '.join(DRILLS)}")
    if sb.state() is None:
        raise SandboxError(f"sandbox {sb.name!r} is not up: run `opsbook sandbox up` first")
    ensure_workloads(api)
    result = DRILLS[scenario](sb, api)
    _save_journal(sb, [*_journal(sb), result.__dict__])
    return result


def reset(sb: Sandbox, api: k8s.ApiClient) -> list[str]:
    """Undo every drill that ran on this sandbox; return what was undone."""
    undone: list[str] = []
    for entry in reversed(_journal(sb)):
        scenario = entry["scenario"]
        if scenario == "node-lost":
            faults.resume_heartbeat(sb, api, entry["details"]["node"])
            undone.append(f"resumed heartbeats of {entry['details']['node']}")
        elif scenario == "certificate-expired":
            _replace_push_cert(api, days_valid=365)
            undone.append("renewed apns-push-cert")
        elif scenario == "crashloop-after-deploy":
            _set_image(api, "taxi-api", "taxi/api:1.4.2", "rollback to 1.4.2")
            undone.append("rolled taxi-api back to 1.4.2")
        elif scenario == "bad-database-update":
            _set_image(api, "mongodb", "mongo:4.4", "rollback to mongo:4.4")
            undone.append("rolled mongodb back to mongo:4.4")
    _save_journal(sb, [])
    return undone
