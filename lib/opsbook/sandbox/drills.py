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

from opsbook.aws.asg import cluster_asg_records
from opsbook.aws.session import client as aws_client
from opsbook.errors import BadInput, SandboxError
from opsbook.kops.spec import ClusterSpec
from opsbook.procs import wait_for
from opsbook.sandbox import faults, seed, upgrade_drills
from opsbook.sandbox.sandbox import Sandbox, _spec_from_dict

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


def wait_for_evictions(api: k8s.ApiClient, node: str, timeout: float = 90.0) -> float:
    """Wait until the node controller evicts taxi-api's pods from a lost ``node`` and 3 replacements run.

    A lost node's pods go only after the grace period and the unreachable toleration (10 s + 10 s on the
    sandbox, 40 s + 300 s in production): an outage analysis run before that sees no node loss yet.

    Returns:
        Seconds waited.

    Raises:
        SandboxError: not evicted and replaced within ``timeout``.
    """
    core = k8s.CoreV1Api(api)
    t0 = time.monotonic()

    def evicted() -> bool:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector="app=taxi-api").items
        on_node = [p for p in pods if p.spec.node_name == node]
        replaced = [p for p in pods if p.spec.node_name != node and p.status.phase == "Running"]
        return bool(on_node) and all(p.metadata.deletion_timestamp for p in on_node) and len(replaced) >= 3

    wait_for(evicted, timeout, f"taxi-api's pods on {node} to be evicted and replaced", interval=1.0)
    return time.monotonic() - t0


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


SCHEDULE_WAIT_S = 60.0  # a drill run right after `sandbox up` waits this long for its pods to be placed


def _scheduled_pods(
    core: k8s.CoreV1Api, app: str, *, terminating: bool = False, timeout: float = SCHEDULE_WAIT_S
) -> list[k8s.V1Pod]:
    """The ``app`` pods of the taxi namespace that are on a node (and not being deleted, unless ``terminating``).

    Waits (bounded) for at least one: right after ``ensure_workloads`` on a busy machine the scheduler
    may not have placed them yet.

    Raises:
        SandboxError: none was scheduled within ``timeout`` seconds.
    """
    pods: list[k8s.V1Pod] = []

    def placed() -> bool:
        pods[:] = [
            p
            for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={app}").items
            if p.spec.node_name and (terminating or not p.metadata.deletion_timestamp)
        ]
        return bool(pods)

    wait_for(placed, timeout, f"a {app} pod to be scheduled (check `kubectl get nodes` and "
             f"`kubectl -n {NAMESPACE} get pods -l app={app}`)", interval=0.5)
    return pods


def self_signed(
    common_name: str, days_valid: float, not_before_days: int = 0, now: dt.datetime | None = None
) -> tuple[str, str]:
    """A self-signed certificate and key (PEM), valid until ``now + days_valid`` (negative: already expired)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = now or dt.datetime.now(dt.UTC)
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
    k8s.CoreV1Api(api).patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": status})


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
    pods = _scheduled_pods(core, "taxi-api", terminating=True)
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
    pod = _scheduled_pods(core, "rabbitmq", terminating=True)[0]
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
    instance_id: str, start: dt.datetime, hours: int = 6, queue_dimensions: dict[str, str] | None = None
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
        faults.MetricSeries(
            QUEUE_NAMESPACE, QUEUE_METRIC, queue_dimensions or QUEUE_DIMENSIONS, start, step, queue, "Count"
        ),
    ]


def _replace_push_cert(
    api: k8s.ApiClient, days_valid: float, not_before_days: int = 0, name: str = "apns-push-cert",
    namespace: str = NAMESPACE, now: dt.datetime | None = None,
) -> None:
    """Replace (or create) a TLS secret with a new self-signed certificate."""
    cert, key = self_signed("push.taxi.example.com", days_valid=days_valid, not_before_days=not_before_days,
                            now=now)
    core = k8s.CoreV1Api(api)
    body = k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=name),
        type="kubernetes.io/tls",
        string_data={"tls.crt": cert, "tls.key": key},
    )
    if name in {x.metadata.name for x in core.list_namespaced_secret(namespace).items}:
        core.replace_namespaced_secret(name, namespace, body)
    else:
        core.create_namespaced_secret(namespace, body)


def drill_certificate_expired(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """The push-notification TLS certificate expires (it did, and push notifications stopped).

    The certificate is replaced by one whose ``notAfter`` is this very second: it expires during the drill,
    as it did in the incident (a certificate that expired long ago is a standing problem, not a cause).
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _replace_push_cert(api, days_valid=0, not_before_days=365, now=now)
    return DrillResult(
        "certificate-expired",
        [f"replaced secret {NAMESPACE}/apns-push-cert with a certificate that expires now ({now:%H:%M:%S}Z)"],
        "opsbook drill --reset (issues a fresh one-year certificate)",
        _now(),
        {"not_after": now.isoformat()},
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


def _older_cluster(sb: Sandbox, api: k8s.ApiClient) -> tuple[str, str, list[str]]:
    st = sb.state()
    version = str((st.spec if st else {}).get("kubernetes_version", "1.34.4"))
    older = upgrade_drills.older_version(version)
    return version, older, upgrade_drills.set_cluster_version(api, older)


def drill_upgrade_blocked_by_pdb(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """An upgrade is due and a PDB allows no disruption: the rolling update must stop and say so."""
    version, older, nodes = _older_cluster(sb, api)
    upgrade_drills.blocking_pdb(api)
    return DrillResult(
        "upgrade-blocked-by-pdb",
        [f"the cluster now reports Kubernetes v{older} ({len(nodes)} kubelets and the control-plane pods)",
         f"created {NAMESPACE}/ledger (2 replicas) with PDB ledger minAvailable=2: 0 disruptions allowed"],
        "opsbook drill --reset (deletes ledger and its PDB, uncordons noted nodes, restores the version)",
        _now(),
        {"version": version, "older": older, "nodes": nodes},
    )


def drill_upgrade_single_replica(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """An upgrade is due and rabbitmq, mongodb and push-notifier run one replica each, without a PDB."""
    version, older, nodes = _older_cluster(sb, api)
    return DrillResult(
        "upgrade-single-replica",
        [f"the cluster now reports Kubernetes v{older} ({len(nodes)} kubelets and the control-plane pods)",
         f"{NAMESPACE}/rabbitmq, mongodb and push-notifier run 1 replica each without a PDB: each is down "
         "while its node drains"],
        "opsbook drill --reset (uncordons noted nodes, restores the version)",
        _now(),
        {"version": version, "older": older, "nodes": nodes},
    )


# -- the seed's outages that had no drill ----------------------------------------------------------

CONSUMER_DIMENSIONS = {"Queue": "TaxiPosition", "VirtualHost": "taxi"}
CONSUMER = "position-consumer"


def consumer_stall_series(
    start: dt.datetime, stall_at: dt.datetime, end: dt.datetime, dimensions: dict[str, str] | None = None
) -> list[faults.MetricSeries]:
    """One-minute queue metrics of a consumer that stalls at ``stall_at``.

    Depth steady near 100 and acks near 50/s until then; afterwards the consumer acks nothing (0) and
    the depth grows by 120 a minute.
    """
    step = dt.timedelta(minutes=1)
    n = int((end - start) / step) + 1
    depth, acks = [], []
    for i in range(n):
        t = start + i * step
        stalled = t >= stall_at
        minutes = int((t - stall_at) / step) if stalled else 0
        depth.append(100.0 + (i % 3) * 5 + (120.0 * (minutes + 1) if stalled else 0.0))
        acks.append(0.0 if stalled else 50.0 + (i % 2))
    dims = dimensions or CONSUMER_DIMENSIONS
    return [
        faults.MetricSeries(QUEUE_NAMESPACE, QUEUE_METRIC, dims, start, step, depth, "Count"),
        faults.MetricSeries(QUEUE_NAMESPACE, "AckRate", dims, start, step, acks, "Count/Second"),
    ]


def consumer_metric_specs(dimensions: dict[str, str] | None = None) -> list[str]:
    """The ``extra_metrics`` entries that show a stalled consumer (depth mapped to its Deployment)."""
    dims = ",".join(f"{k}={v}" for k, v in (dimensions or CONSUMER_DIMENSIONS).items())
    return [
        f"{QUEUE_NAMESPACE}/{QUEUE_METRIC}:{dims}@{NAMESPACE}/{CONSUMER}",
        f"{QUEUE_NAMESPACE}/AckRate:{dims}",
    ]


def drill_consumer_stalled(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """The position consumer is stuck reading from the TaxiPosition queue.

    Its pods stay Running and Ready with no restarts; nothing is wrong with nodes or credits. Only the
    queue shows it: the depth grows while the consumer's ack rate is flat at zero (seeded in moto's
    CloudWatch: the last 30 minutes, stalled 15 minutes ago).
    """
    apps = k8s.AppsV1Api(api)
    if CONSUMER not in {d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items}:
        apps.create_namespaced_deployment(NAMESPACE, _deployment(CONSUMER, "taxi/position-consumer:3.2.0", 2))
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    stall = now - dt.timedelta(minutes=15)
    st = sb.state()
    written = faults.seed_metrics(
        consumer_stall_series(now - dt.timedelta(minutes=30), stall, now - dt.timedelta(minutes=1)),
        region=st.region if st else None,
    )
    return DrillResult(
        "consumer-stalled",
        [
            f"seeded {written} CloudWatch points: {QUEUE_NAMESPACE}/{QUEUE_METRIC} {CONSUMER_DIMENSIONS} grows "
            f"and AckRate is 0 from {stall:%H:%M}Z; deployment {NAMESPACE}/{CONSUMER} stays Running and Ready",
            "analyse with extra_metrics " + " ".join(consumer_metric_specs()),
        ],
        f"nothing to undo in CloudWatch; the cure is `kubectl -n {NAMESPACE} rollout restart deployment/{CONSUMER}`",
        _now(),
        {"stalled_at": stall.isoformat(), "deployment": f"{NAMESPACE}/{CONSUMER}"},
    )


def _spec(sb: Sandbox) -> Any:
    st = sb.state()
    if st is None:
        raise SandboxError(f"sandbox {sb.name!r} is not up: run `opsbook sandbox up` first")
    return ClusterSpec(**_spec_from_dict(st.spec)) if st.spec else ClusterSpec()


def _worker_zone_nodes(api: k8s.ApiClient) -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {}
    for n in k8s.CoreV1Api(api).list_node().items:
        labels = n.metadata.labels or {}
        if "node-role.kubernetes.io/control-plane" in labels:
            continue
        zones.setdefault(labels.get("topology.kubernetes.io/zone", "?"), []).append(n.metadata.name)
    return zones


def drill_zone_outage(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """Every node of one availability zone stops heartbeating at once (zone issue / network split).

    The zone chosen is the one of the second worker zone without the control plane; when it has a single
    node, its instance group is first scaled to two (a new instance in moto, a new node), so the outage is
    visibly a zone's and not a node's.
    """
    spec = _spec(sb)
    zones = _worker_zone_nodes(api)
    zone = next((z for z in sorted(zones) if z not in spec.master_zones), sorted(zones)[0])
    added = ""
    if len(zones[zone]) < 2:
        asg = aws_client("autoscaling", spec.region)
        name = f"nodes-{zone}.{spec.name}"
        asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=2, DesiredCapacity=2)
        before = set(zones[zone])
        seed.seed_nodes(api, spec, seed.list_instances(spec))
        core = k8s.CoreV1Api(api)

        def ready() -> bool:
            names = _worker_zone_nodes(api).get(zone, [])
            return len(names) >= 2 and all(
                any(c.type == "Ready" and c.status == "True" for c in core.read_node(n).status.conditions or [])
                for n in names
            )

        wait_for(ready, 60, f"the second node of {zone} to be Ready")
        added = ", ".join(sorted(set(_worker_zone_nodes(api)[zone]) - before))
    nodes = sorted(_worker_zone_nodes(api)[zone])
    for node in nodes:
        faults.stop_heartbeat(sb, api, node)
    return DrillResult(
        "zone-outage",
        ([f"scaled nodes-{zone} to 2 (new node {added})"] if added else [])
        + [f"stopped the heartbeats of every node of {zone}: {', '.join(nodes)}"],
        "opsbook drill --reset (resumes their heartbeats)",
        _now(),
        {"zone": zone, "nodes": nodes},
    )


def drill_ec2_death(sb: Sandbox, api: k8s.ApiClient) -> DrillResult:
    """A worker's EC2 instance dies.

    Terminated in moto (through its Auto Scaling group), the kubelet stops, the node goes NotReady and
    its pods are evicted; the Node object is deleted later, as the cloud node controller does for an
    instance that no longer exists (:func:`finish_ec2_death`).
    """
    core = k8s.CoreV1Api(api)
    pods = _scheduled_pods(core, "taxi-api")
    node = core.read_node(pods[0].spec.node_name)
    iid = node.spec.provider_id.rsplit("/", 1)[1]
    region = _spec(sb).region
    faults.terminate_instance(iid, region)
    faults.stop_heartbeat(sb, api, node.metadata.name)
    return DrillResult(
        "ec2-death",
        [f"terminated instance {iid} (node {node.metadata.name}) and stopped its kubelet's heartbeats"],
        "opsbook drill --reset (a replacement instance registers as a new node)",
        _now(),
        {"node": node.metadata.name, "instance_id": iid},
    )


def finish_ec2_death(api: k8s.ApiClient, node: str) -> None:
    """Delete the dead instance's Node, as the cloud node lifecycle controller does (its pods then go)."""
    k8s.CoreV1Api(api).delete_node(node)


DRILLS: dict[str, Callable[[Sandbox, k8s.ApiClient], DrillResult]] = {
    "master-restart": drill_master_restart,
    "node-lost": drill_node_lost,
    "cpu-credits-exhausted": drill_cpu_credits_exhausted,
    "certificate-expired": drill_certificate_expired,
    "crashloop-after-deploy": drill_crashloop_after_deploy,
    "bad-database-update": drill_bad_database_update,
    "upgrade-blocked-by-pdb": drill_upgrade_blocked_by_pdb,
    "upgrade-single-replica": drill_upgrade_single_replica,
    "consumer-stalled": drill_consumer_stalled,
    "zone-outage": drill_zone_outage,
    "ec2-death": drill_ec2_death,
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


def _replace_dead_instance(sb: Sandbox, api: k8s.ApiClient, node: str) -> str:
    """After an EC2 death: drop the dead node if it is still there, register the ASG's replacement."""
    core = k8s.CoreV1Api(api)
    if node in {n.metadata.name for n in core.list_node().items}:
        faults.resume_heartbeat(sb, api, node)  # kwok must manage it again to finish its pods
        core.delete_node(node)
    spec = _spec(sb)
    asg = aws_client("autoscaling", spec.region)
    for g in cluster_asg_records(spec.name, spec.region, asg):  # moto does not replace by itself
        healthy = [i for i in g["Instances"] if i["LifecycleState"] == "InService"]
        if len(healthy) < g["DesiredCapacity"]:
            asg.set_desired_capacity(AutoScalingGroupName=g["AutoScalingGroupName"],
                                     DesiredCapacity=g["DesiredCapacity"], HonorCooldown=False)
    names = seed.seed_nodes(api, spec, seed.list_instances(spec))
    return f"deleted node {node}; nodes now {', '.join(sorted(names))}"


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
        elif scenario.startswith("upgrade-"):
            undone += upgrade_drills.undo(sb, api, entry)
        elif scenario == "zone-outage":
            for node in entry["details"]["nodes"]:
                faults.resume_heartbeat(sb, api, node)
            undone.append(f"resumed heartbeats of {', '.join(entry['details']['nodes'])}")
        elif scenario == "ec2-death":
            undone.append(_replace_dead_instance(sb, api, entry["details"]["node"]))
    _save_journal(sb, [])
    return undone
