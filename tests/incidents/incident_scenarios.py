"""The scored incident corpus: each scenario is a small script on the sandbox plus its expectation.

A script breaks things (a drill, a fault, noise), waits for the effects a real incident would leave
(evictions, crash loops), and records when the cause began (``ctx.began``) and which object the first
likely cause must name (``ctx.obj``). The expectation says which check must rank first, which checks must
not rank above it, and what else must be found. ``window`` is ``live`` (the window opens just before the
script runs, minutes after the workloads started) or ``history`` (an incident from earlier in the night,
whose window closed before the workloads of this run were created: metric-only outages).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from opsbook.sandbox import Sandbox, drills, faults

UTC = dt.UTC
NOISE_NS = "legacy"


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass
class Ctx:
    """What a scenario script gets, and what it fills in."""

    sb: Sandbox
    api: k8s.ApiClient
    anchor: dt.datetime  # history scenarios: their window ends here (before the workloads were created)
    run_id: str
    began: dt.datetime | None = None  # when the expected cause began
    obj: str = ""  # the object the rank-1 cause must name
    start: dt.datetime | None = None  # window start (history scenarios set it)
    end: dt.datetime | None = None  # window end (history scenarios set it)
    extra_metrics: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    script: Callable[[Ctx], None]
    check: str | None  # rank-1 likely cause; None: a quiet window, no likely cause at high or above
    not_above: tuple[str, ...] = ()  # checks that must not rank above the expected one
    also: tuple[str, ...] = ()  # further checks that must be found as likely causes, after the first
    standing: tuple[str, ...] = ()  # checks that must be listed as standing problems
    window: str = "live"
    noise: str = ""


# -- waits -------------------------------------------------------------------------------------------


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def marked_pods(api: k8s.ApiClient, since: dt.datetime) -> set[str]:
    """Pods the taint manager marked for deletion since ``since``."""
    evs = k8s.CoreV1Api(api).list_event_for_all_namespaces(field_selector="reason=TaintManagerEviction").items
    return {
        f"{e.involved_object.namespace}/{e.involved_object.name}"
        for e in evs
        if (e.message or "").startswith("Marking")
        and (e.last_timestamp or e.event_time or e.metadata.creation_timestamp) >= since
    }


def wait_evictions(ctx: Ctx, pods: list[str], since: dt.datetime, timeout: float = 90) -> None:
    """Until the taint manager has marked every one of ``pods`` (``ns/name``) for deletion."""
    wait_until(lambda: set(pods) <= marked_pods(ctx.api, since), timeout, f"evictions of {pods}")
    ctx.facts["evicted"] = sorted(pods)


def pods_on(api: k8s.ApiClient, nodes: list[str]) -> list[str]:
    """Evictable pods (not DaemonSet or static) of the taxi namespace on these nodes."""
    return sorted(
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in k8s.CoreV1Api(api).list_namespaced_pod(drills.NAMESPACE).items
        if p.spec.node_name in nodes and not p.metadata.deletion_timestamp
    )


def last_event_at(api: k8s.ApiClient, namespace: str) -> dt.datetime | None:
    """When anything last happened in ``namespace``: the latest event's last (or only) time."""
    times = [
        t
        for e in k8s.CoreV1Api(api).list_namespaced_event(namespace).items
        for t in [e.series.last_observed_time if e.series else None, e.last_timestamp, e.event_time,
                  e.first_timestamp, e.metadata.creation_timestamp]
        if t is not None
    ]
    return max(times) if times else None


def settle(sb: Sandbox, api: k8s.ApiClient, timeout: float = 180, quiet_s: float = 10) -> None:
    """Until every node is Ready, nothing is Terminating, every taxi Deployment is available, and
    nothing has happened in the taxi namespace for ``quiet_s`` seconds.

    The quiet gap keeps the previous scenario's aftermath (a rollback's last crashes and unready pods)
    out of the next window: a window that opens a moment after them would rightly see them.
    """
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    problems: list[str] = []

    def ok() -> bool:
        problems.clear()
        for n in core.list_node().items:
            if not any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []):
                problems.append(f"node {n.metadata.name} not Ready")
        problems.extend(
            f"pod {p.metadata.name} Terminating on {p.spec.node_name}"
            for p in core.list_namespaced_pod(drills.NAMESPACE).items
            if p.metadata.deletion_timestamp
        )
        problems.extend(
            f"deployment {d.metadata.name}: {d.status.updated_replicas}/{d.status.available_replicas}/"
            f"{d.status.replicas} of {d.spec.replicas}"
            for d in apps.list_namespaced_deployment(drills.NAMESPACE).items
            if not (
                (d.status.updated_replicas or 0) == d.spec.replicas
                and (d.status.available_replicas or 0) >= d.spec.replicas
                and (d.status.replicas or 0) == d.spec.replicas
            )
        )
        return not problems

    # The sandbox re-reports pod readiness by itself when a node returns (kwok Stage pod-ready-again).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            last = last_event_at(api, drills.NAMESPACE)
            if last is None or (now() - last).total_seconds() >= quiet_s:
                return
            problems.append(f"last event in {drills.NAMESPACE} at {last:%H:%M:%S}, less than {quiet_s:.0f}s ago")
        time.sleep(0.5)
    raise AssertionError(f"the sandbox did not settle in {timeout}s: {problems}")


# -- workloads and standing noise, created once ------------------------------------------------------


def start_workloads(sb: Sandbox, api: k8s.ApiClient) -> None:
    """The taxi workloads, the position consumer, and the standing noise: a certificate that expired
    400 days ago and a worker crash-looping since it was deployed, in namespace ``legacy``."""
    drills.ensure_workloads(api)
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    have = {d.metadata.name for d in apps.list_namespaced_deployment(drills.NAMESPACE).items}
    if drills.CONSUMER not in have:
        apps.create_namespaced_deployment(
            drills.NAMESPACE, drills._deployment(drills.CONSUMER, "taxi/position-consumer:3.2.0", 2)
        )
    if NOISE_NS not in {n.metadata.name for n in core.list_namespace().items}:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NOISE_NS)))
    drills._replace_push_cert(api, days_valid=-400, not_before_days=800, name="old-tls", namespace=NOISE_NS)
    if "old-worker" not in {d.metadata.name for d in apps.list_namespaced_deployment(NOISE_NS).items}:
        apps.create_namespaced_deployment(NOISE_NS, drills._deployment("old-worker", "legacy/worker:0.9", 1))


def crashloop_noise(api: k8s.ApiClient) -> None:
    """Keep the legacy worker crash-looping (status and a BackOff event), as a kubelet would report it."""
    core = k8s.CoreV1Api(api)
    pods = [
        p for p in core.list_namespaced_pod(NOISE_NS).items if p.spec.node_name and not p.metadata.deletion_timestamp
    ]
    for p in pods:
        drills._pod_status(
            api,
            p,
            False,
            {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
            40,
        )
        drills._kubelet_event(api, p, "BackOff", "Back-off restarting failed container old-worker", count=40)


def routine_rollout(ctx: Ctx) -> None:
    """A rollout that succeeds inside the window (push-notifier to a new patch version)."""
    image = f"taxi/push:2.1.{int(time.time()) % 1000}"
    drills._set_image(ctx.api, "push-notifier", image, "routine patch release")
    drills._new_pods(ctx.api, "push-notifier", image)
    ctx.facts["routine_rollout"] = image


# -- scripts -----------------------------------------------------------------------------------------


def cpu_credits(ctx: Ctx) -> None:
    """The drill's six hours of credit metrics, ending just before this run's workloads were created."""
    core = k8s.CoreV1Api(ctx.api)
    pod = next(
        p for p in core.list_namespaced_pod(drills.NAMESPACE, label_selector="app=rabbitmq").items if p.spec.node_name
    )
    iid = core.read_node(pod.spec.node_name).spec.provider_id.rsplit("/", 1)[1]
    queue = {"Queue": f"TaxiPosition-{ctx.run_id}"}  # CloudWatch keeps earlier runs' points: a fresh series
    series_start = ctx.anchor - dt.timedelta(hours=6)
    st = ctx.sb.state()
    faults.seed_metrics(
        drills.credit_exhaustion_series(iid, series_start, queue_dimensions=queue), st.region if st else None
    )
    # 144 credits, -4 per 5 min: zero at the 36th point, 35 steps after the first
    ctx.began = series_start + dt.timedelta(minutes=5 * 35)
    ctx.obj = f"instance/{iid}"
    ctx.start, ctx.end = ctx.anchor - dt.timedelta(hours=4), ctx.anchor
    ctx.extra_metrics = [f"{drills.QUEUE_NAMESPACE}/{drills.QUEUE_METRIC}:Queue={queue['Queue']}"]


def consumer_stalled(ctx: Ctx) -> None:
    dims = {"Queue": "TaxiPosition", "VirtualHost": f"taxi-{ctx.run_id}"}
    stall = ctx.anchor - dt.timedelta(minutes=15)
    st = ctx.sb.state()
    faults.seed_metrics(
        drills.consumer_stall_series(
            ctx.anchor - dt.timedelta(minutes=30), stall, ctx.anchor - dt.timedelta(minutes=1), dims
        ),
        st.region if st else None,
    )
    ctx.began, ctx.obj = stall, f"deployment/{drills.NAMESPACE}/{drills.CONSUMER}"
    ctx.start, ctx.end = ctx.anchor - dt.timedelta(minutes=30), ctx.anchor
    ctx.extra_metrics = drills.consumer_metric_specs(dims)


def master_restart(ctx: Ctx) -> None:
    r = drills.run_drill("master-restart", ctx.sb, ctx.api)
    ctx.began = dt.datetime.fromtimestamp(r.details["stopped_at"], UTC)  # the outage began when it stopped
    ctx.obj = "controlplane/kube-apiserver"
    time.sleep(3)


def node_lost(ctx: Ctx) -> None:
    t = now()
    r = drills.run_drill("node-lost", ctx.sb, ctx.api)
    node = r.details["node"]
    ctx.began, ctx.obj = t, f"node/{node}"
    ctx.facts["node"] = node
    wait_evictions(ctx, ctx.facts.get("pods_before") or [], t)


def _node_lost_prepare(ctx: Ctx) -> None:
    core = k8s.CoreV1Api(ctx.api)
    api_pod = next(
        p for p in core.list_namespaced_pod(drills.NAMESPACE, label_selector="app=taxi-api").items if p.spec.node_name
    )
    ctx.facts["pods_before"] = pods_on(ctx.api, [api_pod.spec.node_name])


def node_lost_full(ctx: Ctx) -> None:
    _node_lost_prepare(ctx)
    node_lost(ctx)


def certificate(ctx: Ctx) -> None:
    r = drills.run_drill("certificate-expired", ctx.sb, ctx.api)
    ctx.began = dt.datetime.fromisoformat(r.details["not_after"])
    ctx.obj = f"secret/{drills.NAMESPACE}/apns-push-cert"
    time.sleep(2)


def crashloop(ctx: Ctx) -> None:
    ctx.began = now()
    drills.run_drill("crashloop-after-deploy", ctx.sb, ctx.api)
    ctx.obj = f"deployment/{drills.NAMESPACE}/taxi-api"


def bad_database(ctx: Ctx) -> None:
    ctx.began = now()
    drills.run_drill("bad-database-update", ctx.sb, ctx.api)
    ctx.obj = f"deployment/{drills.NAMESPACE}/mongodb"


def zone_outage(ctx: Ctx) -> None:
    r = drills.run_drill("zone-outage", ctx.sb, ctx.api)
    zone, nodes = r.details["zone"], r.details["nodes"]
    # the cause begins when the last node of the zone stopped (the drill may first add a node)
    ctx.began, ctx.obj = now(), f"zone/{zone}"
    ctx.facts["zone"], ctx.facts["nodes"] = zone, nodes
    pods = pods_on(ctx.api, nodes)
    core = k8s.CoreV1Api(ctx.api)

    def tainted() -> bool:
        return all(
            any(t.key == "node.kubernetes.io/unreachable" and t.effect == "NoExecute" for t in n.spec.taints or [])
            for n in (core.read_node(x) for x in nodes)
        )

    wait_until(tainted, 90, f"every node of {zone} tainted unreachable:NoExecute")
    wait_evictions(ctx, pods, ctx.began - dt.timedelta(seconds=30))


def ec2_death(ctx: Ctx) -> None:
    _node_lost_prepare(ctx)
    t = now()
    r = drills.run_drill("ec2-death", ctx.sb, ctx.api)
    node = r.details["node"]
    ctx.began, ctx.obj = t, f"node/{node}"
    ctx.facts["instance_id"] = r.details["instance_id"]
    wait_evictions(ctx, ctx.facts["pods_before"], t)
    drills.finish_ec2_death(ctx.api, node)
    wait_until(
        lambda: node not in {n.metadata.name for n in k8s.CoreV1Api(ctx.api).list_node().items},
        30,
        f"node {node} deleted",
    )


def quiet(ctx: Ctx) -> None:
    time.sleep(8)
    ctx.began = None


def with_noise(script: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    """The same script, with a routine rollout succeeding and the legacy worker crash-looping in the window."""

    def run(ctx: Ctx) -> None:
        crashloop_noise(ctx.api)
        routine_rollout(ctx)
        script(ctx)
        crashloop_noise(ctx.api)

    run.__name__ = f"{script.__name__}_with_noise"
    return run


def crashloop_then_node_lost(ctx: Ctx) -> None:
    crashloop(ctx)
    first, obj = ctx.began, ctx.obj
    time.sleep(5)
    _node_lost_prepare(ctx)
    node_lost(ctx)
    ctx.facts["second"] = (ctx.obj, ctx.began)
    ctx.began, ctx.obj = first, obj


def node_lost_then_crashloop(ctx: Ctx) -> None:
    # (a Recreate rollout such as the MongoDB update would wait for the pod stuck Terminating on the lost
    # node, as Kubernetes does; the rolling taxi-api update goes ahead on the other nodes)
    node_lost_full(ctx)
    first, obj = ctx.began, ctx.obj
    time.sleep(3)
    crashloop(ctx)
    ctx.facts["second"] = (ctx.obj, ctx.began)
    ctx.began, ctx.obj = first, obj


SCENARIOS = [
    # incidents from earlier in the night (metric-only): their windows close before the workloads start
    Scenario("cpu-credits-exhausted", cpu_credits, "cpu.credits", window="history"),
    Scenario("consumer-stalled", consumer_stalled, "consumer.stalled", not_above=("cpu.credits",), window="history"),
    # the drills, live, minutes after the workloads started
    Scenario("master-restart", master_restart, "control-plane.restart", not_above=("node.lost",)),
    Scenario("node-lost", node_lost_full, "node.lost", not_above=("certificate.expiry",)),
    Scenario("certificate-expired", certificate, "certificate.expiry"),
    Scenario("crashloop-after-deploy", crashloop, "rollout.crashloop", not_above=("certificate.expiry",)),
    Scenario("bad-database-update", bad_database, "rollout.unready", not_above=("certificate.expiry",)),
    Scenario("zone-outage", zone_outage, "zone.outage", not_above=("node.lost",)),
    Scenario("ec2-death", ec2_death, "node.lost", not_above=("asg.terminated",)),
    # with noise: a routine rollout in the window, the legacy worker crash-looping, the old certificate
    Scenario(
        "node-lost + noise",
        with_noise(node_lost_full),
        "node.lost",
        not_above=("rollout.crashloop", "certificate.expiry"),
        standing=("certificate.expiry", "pod.crashloop"),
        noise="yes",
    ),
    # (the certificate scenario runs before the crash-loop one: a window opened seconds after the
    # crash-loop's rollback still sees that ReplicaSet's last crashes, as a real cluster would)
    Scenario(
        "certificate-expired + noise",
        with_noise(certificate),
        "certificate.expiry",
        not_above=("rollout.crashloop",),
        standing=("certificate.expiry", "pod.crashloop"),
        noise="yes",
    ),
    Scenario(
        "crashloop-after-deploy + noise",
        with_noise(crashloop),
        "rollout.crashloop",
        not_above=("certificate.expiry",),
        standing=("certificate.expiry", "pod.crashloop"),
        noise="yes",
    ),
    # two causes, ranked by time
    Scenario("crashloop, then node lost", crashloop_then_node_lost, "rollout.crashloop", also=("node.lost",)),
    Scenario(
        "node lost, then crash-looping deploy", node_lost_then_crashloop, "node.lost", also=("rollout.crashloop",)
    ),
    # nothing happened
    Scenario("quiet window", quiet, None, standing=("certificate.expiry",)),
]


def new_run_id() -> str:
    return uuid.uuid4().hex[:6]
