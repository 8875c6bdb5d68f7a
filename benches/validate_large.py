"""Benchmark: validate-cluster on a big simulated cluster vs. `kubectl get nodes,pods -A -o json`.

Builds a dedicated sandbox (default 1,000 kwok nodes, 20,000 pods), then prints side
by side: the kubectl listing time, the validation's time (and its parts), the number
of Kubernetes API requests the validation made, and its peak memory. Tears the
sandbox down afterwards (``--keep`` to leave it).

    .venv/bin/python benches/validate_large.py                      # 1000 nodes, 20000 pods
    .venv/bin/python benches/validate_large.py --nodes 200 --pods 4000   # quick run

Pods: ``--deployment-pods`` of them through Deployments (scheduler + ReplicaSet
controller, the realistic path), the rest created directly, already bound to a
node (``spec.nodeName``), from a thread pool: the controller path is limited by
kube-controller-manager's client QPS and cannot create 20,000 pods on two shared
cores within the 10-minute build budget. kwok then makes every pod Running.

The sandbox uses kwokctl's default heartbeat factor (5): 1,000 simulated kubelets
renewing leases at the test setting (0.25) would load the shared machine with
~400 writes/s and distort both measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

NAME = "validate-bench"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- child: one validation, measured in a fresh process ---------------------------------------------


def hwm_mb() -> float:
    """Peak RSS of this process image in MB (VmHWM: ru_maxrss keeps the parent's peak across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(limit: int) -> None:
    import logging

    from opsbook.analysis import validate as v
    from opsbook.k8s import inventory
    from opsbook.k8s.client import api_client
    from opsbook.runbooks import validate_cluster as vc

    logging.basicConfig(level=logging.WARNING)
    t_setup = time.perf_counter()
    api = api_client()
    src = vc.Sources(api=api, limit=limit)
    vc.aws_clients(src)  # one-off per process (botocore loads the EC2 model: ~0.7 s), like api_client()
    setup_s = time.perf_counter() - t_setup
    base_rss = hwm_mb()
    t0 = time.perf_counter()
    inputs = vc.collect(src)
    t1 = time.perf_counter()
    val = v.evaluate(inputs)
    t2 = time.perf_counter()
    peak = hwm_mb()
    snap: inventory.Snapshot = inputs.snapshot
    print(
        json.dumps(
            {
                "seconds": t2 - t0,
                "collect_s": t1 - t0,
                "snapshot_s": snap.seconds,
                "checks_s": t2 - t1,
                "requests": snap.requests,
                "aws_calls": inputs.aws_calls,
                "nodes": len(snap.nodes),
                "pods": len(snap.pods),
                "evaluations": len(val.evaluations),
                "findings": len(val.findings),
                "passed": val.passed,
                "score": val.score,
                "peak_rss_mb": peak,
                "baseline_rss_mb": base_rss,
                "setup_s": setup_s,
            }
        )
    )


def measure_validation(limit: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--limit", str(limit)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure_kubectl(kubectl: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([kubectl, "get", "nodes,pods", "-A", "-o", "json"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


# -- building the cluster ---------------------------------------------------------------------------


def pod_body(name: str, node: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app, "bench": "1"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example.com/{app}:1.4.2",
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"memory": "128Mi"},
                    },
                }
            ],
        },
    }


def count_running(core: Any) -> tuple[int, int]:
    running = total = 0
    token = None
    while True:
        kw: dict[str, Any] = {"limit": 5000, "_preload_content": False}
        if token:
            kw["_continue"] = token
        body = json.loads(core.list_pod_for_all_namespaces(**kw).data)
        for p in body["items"]:
            total += 1
            running += (p.get("status") or {}).get("phase") == "Running"
        token = body["metadata"].get("continue")
        if not token:
            return running, total


def build(nodes: int, pods: int, deployment_pods: int, namespaces: int, threads: int) -> tuple[Any, float]:
    from kubernetes import client as k8s

    from opsbook.k8s.client import api_client
    from opsbook.kops.spec import ClusterSpec
    from opsbook.procs import wait_for
    from opsbook.sandbox import Sandbox
    from opsbook.sandbox.cluster import Timing

    t0 = time.monotonic()
    sb = Sandbox(NAME)
    spec = ClusterSpec(node_count=nodes)
    try:
        sb.up(
            spec=spec,
            timing=Timing(heartbeat_factor=5.0, not_ready_toleration_s=300, unreachable_toleration_s=300),
            progress=log,
        )
    except Exception as e:
        log(f"sandbox up: {e}; waiting for the nodes")
        sb.activate()
    st = sb.state()
    assert st is not None
    api = api_client(st.kubeconfig)
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)

    def nodes_ready() -> bool:
        n = [
            x
            for x in core.list_node().items
            if any(c.type == "Ready" and c.status == "True" for c in x.status.conditions or [])
        ]
        return len(n) >= nodes + 1

    wait_for(nodes_ready, 600, f"{nodes + 1} nodes Ready")
    log(f"{nodes + 1} nodes Ready after {time.monotonic() - t0:.0f}s")
    workers = sorted(n.metadata.name for n in core.list_node(label_selector="kubernetes.io/role=node").items)
    ns_names = [f"bench-{i:02d}" for i in range(namespaces)]
    have_ns = {n.metadata.name for n in core.list_namespace().items}
    for ns in ns_names:
        if ns not in have_ns:
            core.create_namespace({"metadata": {"name": ns}})
    # controller-made pods: Deployments of 100 replicas
    n_deploy = deployment_pods // 100
    for i in range(n_deploy):
        ns, name = ns_names[i % namespaces], f"web-{i:02d}"
        try:
            apps.create_namespaced_deployment(
                ns,
                {
                    "metadata": {"name": name},
                    "spec": {
                        "replicas": 100,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"containers": [pod_body("x", "", name)["spec"]["containers"][0]]},
                        },
                    },
                },
            )
        except k8s.exceptions.ApiException as e:
            if e.status != 409:
                raise
    direct = pods - n_deploy * 100
    start = 0  # creates are idempotent (409 = already there), so a partial build can be resumed

    def create(i: int) -> None:
        ns = ns_names[i % namespaces]
        body = pod_body(f"job-{i:05d}", workers[i % len(workers)], f"svc-{i % 50:02d}")
        try:
            core.create_namespaced_pod(ns, body, _preload_content=False)
        except k8s.exceptions.ApiException as e:
            if e.status != 409:
                raise

    t_pods = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(create, range(start, direct)), start=start + 1):
            if done % 2000 == 0:
                log(
                    f"created {done}/{direct} direct pods ({done / (time.monotonic() - t_pods + 1e-9):.0f}/s)"
                )
    log(f"direct pods created in {time.monotonic() - t_pods:.0f}s")

    def all_running() -> bool:
        running, total = count_running(core)
        log(f"pods running {running}/{total}")
        return running >= pods

    wait_for(all_running, 900, f"{pods} pods Running", interval=15)
    build_s = time.monotonic() - t0
    log(f"cluster built in {build_s:.0f}s")
    return api, build_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=20000)
    ap.add_argument("--deployment-pods", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--limit", type=int, default=2000, help="page size of the validation's list calls")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.limit)
        return

    from opsbook.sandbox import Sandbox
    from opsbook.sandbox.toolchain import Toolchain

    try:
        _, build_s = build(a.nodes, a.pods, a.deployment_pods, a.namespaces, a.threads)
        kubectl = str(Toolchain.expected().kubectl)
        measure_kubectl(kubectl)  # warm-up (discovery cache)
        measure_validation(a.limit)
        k_times, v_runs = [], []
        for i in range(a.repeat):  # interleaved, so background load hits both alike
            k_times.append(measure_kubectl(kubectl))
            v_runs.append(measure_validation(a.limit))
            log(f"round {i + 1}: kubectl {k_times[-1]:.2f}s, validation {v_runs[-1]['seconds']:.2f}s")
        k = statistics.median(k_times)
        vr = sorted(v_runs, key=lambda r: r["seconds"])[len(v_runs) // 2]
        ratio = vr["seconds"] / k
        rows = [
            ("cluster", f"{vr['nodes']} nodes, {vr['pods']} pods (built in {build_s:.0f}s)", ""),
            (f"time (median of {a.repeat})", f"{k:.2f} s", f"{vr['seconds']:.2f} s"),
            ("  of which k8s snapshot", "", f"{vr['snapshot_s']:.2f} s"),
            ("  of which AWS + TLS", "", f"{vr['collect_s'] - vr['snapshot_s']:.2f} s"),
            ("  of which checks", "", f"{vr['checks_s']:.2f} s"),
            ("one-off client setup (not timed)", "", f"{vr['setup_s']:.2f} s"),
            (
                "Kubernetes API requests",
                f"{-(-vr['nodes'] // 500) + -(-vr['pods'] // 500)} (chunk 500)",
                f"{vr['requests']} (8 kinds, page {a.limit})",
            ),
            ("AWS API calls", "0", str(vr["aws_calls"])),
            (
                "peak memory (RSS)",
                "",
                f"{vr['peak_rss_mb']:.0f} MB ({vr['baseline_rss_mb']:.0f} MB after imports)",
            ),
            ("checks evaluated / findings", "", f"{vr['evaluations']} / {vr['findings']}"),
        ]
        print(f"\n{'':34}{'kubectl get nodes,pods -A -o json':>36}{'opsbook validate':>36}")
        for label, kv, vv in rows:
            print(f"{label:34}{kv:>36}{vv:>36}")
        print(
            f"\nratio validation / kubectl = {ratio:.2f}x (target <= 1.5x); "
            f"all runs: kubectl {[round(x, 2) for x in k_times]}, "
            f"validation {[round(r['seconds'], 2) for r in v_runs]}"
        )
    finally:
        if not a.keep:
            log("tearing down the benchmark sandbox")
            Sandbox(NAME).down(progress=log)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
