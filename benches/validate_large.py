"""Benchmark: validate-cluster on a big simulated cluster, whole process against whole process.

Builds a dedicated sandbox (default 1,000 kwok nodes, 20,000 pods), then runs, interleaved
round by round (A, B, C, A, B, C ...) so background load hits every side alike, each in a
fresh process:

- ``opsbook run validate-cluster`` (the engine: kernel, notebook, HTML report);
- ``python -c PLAIN``: the notebook's own library calls in a plain interpreter (the same
  snapshot, AWS calls, checks, tables and figures rendered to PNG);
- ``kubectl get nodes,pods -A -o json``: listing what the validation reads most of, the floor.

Kubernetes API requests are counted on the wire: the API server's ``apiserver_request_total``
is scraped from ``/metrics`` before and after every process (the scrapes themselves and the
background traffic of kwok and the controllers -- leases, node status, informers' watches -- is
left out: only GET and LIST of anything but leases and events are counted, discovery included; an
idle window of the engine's length measures what is left of the background). Round 1 is reported on its own
(first run after the cluster was built: files in the page cache, kubectl's discovery cache
empty); the others are "warm". Tears the sandbox down afterwards (``--keep`` to leave it).

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
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

NAME = os.environ.get("OPSBOOK_BENCH_LARGE_SANDBOX", "validate-bench")

# The notebook's library calls (notebooks/validate-cluster.ipynb, default parameters), figures to PNG
# and tables to HTML as the kernel's display does.
PLAIN = """
import json
from opsbook import report
from opsbook.runbooks import validate_cluster
from opsbook.plots import validate as plots
from opsbook.plots import figure_png
run = validate_cluster.validate_cluster(
    "", "", "", wait=0, count=1, interval=10, max_unready_nodes=0, cert_days=30, restart_threshold=5,
    pending_grace=120, fail_on="high", exclude=[], say=print)
run.attempts.to_html()
report.record("validation", run.summary())
figure_png(plots.run_score(run))
run.findings_table().to_html()
report.findings(validate_cluster.validate_findings(run), quiet=True)
figure_png(plots.node_readiness(run.nodes, run.targets))
figure_png(plots.pods_by_phase(run.pods))
nc = run.not_counted()
getattr(nc, "to_html", lambda: None)()
"""

LINE = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$", re.M)
LABEL = re.compile(r'(\w+)="([^"]*)"')
COUNTED_VERBS = {"GET", "LIST"}  # informers of the controllers re-WATCH all the time; our clients never watch
BACKGROUND_RESOURCES = {"leases", "events"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# -- requests on the wire -------------------------------------------------------------------------


def scrape(api: Any) -> Counter[tuple[str, str]]:
    """``apiserver_request_total`` summed by (verb, resource[/subresource]) from the API server's /metrics."""
    method, url, headers, body, _ = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    resp = api.call_api(method, url, header_params=headers, body=body)
    resp.read()
    text = resp.data.decode()
    out: Counter[tuple[str, str]] = Counter()
    for labels, value in LINE.findall(text):
        d = dict(LABEL.findall(labels))
        res = d.get("resource", "")
        if not res:  # non-resource requests (discovery /api, /apis, /version ...) carry their path here
            res = "path " + d.get("subresource", "")
        elif d.get("subresource"):
            res += "/" + d["subresource"]
        out[(d.get("verb", ""), res)] += int(float(value))
    return out


def counted(delta: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """Reads by a client (GET/LIST, not leases/events): what a validation or a listing asks for."""
    return Counter(
        {k: n for k, n in delta.items() if n > 0 and k[0] in COUNTED_VERBS and k[1] not in BACKGROUND_RESOURCES}
    )


def timed_process(cmd: list[str], env: dict[str, str], api: Any) -> dict[str, Any]:
    """Run ``cmd`` as a fresh process; wall time and the API requests seen by the server meanwhile."""
    before = scrape(api)
    before2 = scrape(api)  # what one scrape adds (the scrape of `before` itself)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - t0
    after = scrape(api)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    scrape_cost = before2 - before
    delta = after - before2 - scrape_cost
    reads = counted(delta)
    return {"seconds": seconds, "requests": sum(reads.values()), "by_kind": dict(reads), "load": loadavg()}


def idle_window(api: Any, seconds: float) -> int:
    """Counted requests nobody of ours made over ``seconds`` (the background that leaks into the count)."""
    before = scrape(api)
    before2 = scrape(api)
    time.sleep(seconds)
    after = scrape(api)
    return sum(counted(after - before2 - (before2 - before)).values())


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


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """First round apart (cold), median of the others (warm)."""
    warm = runs[1:] or runs
    return {
        "first": runs[0]["seconds"],
        "warm": statistics.median(r["seconds"] for r in warm),
        "all": [round(r["seconds"], 2) for r in runs],
        "loads": [r["load"] for r in runs],
        "requests": sorted({r["requests"] for r in runs}),
        "by_kind": warm[len(warm) // 2]["by_kind"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=20000)
    ap.add_argument("--deployment-pods", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=4, help="rounds (round 1 reported apart as cold)")
    ap.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    ap.add_argument("--skip-build", action="store_true", help="the benchmark sandbox is already built (--keep)")
    ap.add_argument("--baseline", metavar="LIB", help="also time `opsbook run` with PYTHONPATH=LIB (another "
                    "checkout's lib/, e.g. `git archive` of the commit before a change)")
    a = ap.parse_args()

    from opsbook.k8s.client import api_client
    from opsbook.sandbox import Sandbox
    from opsbook.sandbox.toolchain import Toolchain

    try:
        if a.skip_build:
            build_s = float("nan")
        else:
            _, build_s = build(a.nodes, a.pods, a.deployment_pods, a.namespaces, a.threads)
        sb = Sandbox(NAME)
        env = {**os.environ, **sb.activate(), "PYTHONWARNINGS": "ignore"}
        api = api_client(env["KUBECONFIG"])
        kubectl = str(Toolchain.expected().kubectl)
        sides: dict[str, list[dict[str, Any]]] = {"kubectl": [], "plain": [], "engine": []}
        with tempfile.TemporaryDirectory() as out:
            cmds = {
                "kubectl": [kubectl, "get", "nodes,pods", "-A", "-o", "json"],
                "plain": [sys.executable, "-c", PLAIN],
                "engine": [sys.executable, "-m", "opsbook.cli", "run", "validate-cluster", "-q", "--output", out],
            }
            if a.baseline:  # the engine of another checkout (e.g. before a change), interleaved with the rest
                cmds["baseline"] = cmds["engine"]
                sides["baseline"] = []
            for i in range(a.repeat):
                for side, cmd in cmds.items():
                    side_env = {**env, "PYTHONPATH": a.baseline} if side == "baseline" else env
                    sides[side].append(timed_process(cmd, side_env, api))
                log(
                    f"round {i + 1}: " + ", ".join(f"{k} {v[-1]['seconds']:.2f}s/{v[-1]['requests']} req"
                                                   for k, v in sides.items())
                    + f" (load {loadavg()})"
                )
        idle = idle_window(api, statistics.median(r["seconds"] for r in sides["engine"]))
        s = {k: summarise(v) for k, v in sides.items()}
        st = sb.state()
        nodes = pods = "?"
        if st is not None:
            from kubernetes import client as k8s

            core = k8s.CoreV1Api(api)
            nodes = str(len(core.list_node().items))
            pods = str(count_running(core)[1])
        print(f"\ncluster: {nodes} nodes, {pods} pods (built in {build_s:.0f}s); each side a fresh process, "
              f"{a.repeat} interleaved rounds; load average at the start of the table {loadavg()}")
        print(f"{'':34}{'kubectl get nodes,pods':>24}{'plain python':>16}{'opsbook run':>16}")
        cols = ("kubectl", "plain", "engine")
        widths = list(zip(cols, (24, 16, 16), strict=True))
        print(f"{'round 1 (cold), s':34}" + "".join(f"{s[c]['first']:>{w}.2f}" for c, w in widths))
        print(f"{'warm, median of rounds 2..n, s':34}" + "".join(f"{s[c]['warm']:>{w}.2f}" for c, w in widths))
        print(f"{'API reads counted on the wire':34}"
              + "".join(f"{'/'.join(map(str, s[c]['requests'])):>{w}}" for c, w in widths))
        for c in cols:
            kinds = ", ".join(f"{n}x {v} {r}" for (v, r), n in sorted(s[c]["by_kind"].items()))
            print(f"  {c}: {kinds}")
        print(f"  background reads in an idle window of the engine's length: {idle}")
        for c in cols:
            print(f"  {c} all runs: {s[c]['all']} (load {s[c]['loads']})")
        e, p, k = s["engine"]["warm"], s["plain"]["warm"], s["kubectl"]["warm"]
        if "baseline" in s:
            b = s["baseline"]
            print(f"  baseline engine ({a.baseline}): round 1 {b['first']:.2f}s, warm {b['warm']:.2f}s "
                  f"= {b['warm'] / s['plain']['warm']:.2f}x plain; all runs {b['all']}")
        print(f"\nengine / plain python (warm) = {e / p:.2f}x (target <= 1.3x: {'met' if e / p <= 1.3 else 'NOT met'});"
              f" cold {s['engine']['first'] / s['plain']['first']:.2f}x")
        print(f"plain python / kubectl listing (warm) = {p / k:.2f}x (target <= 1.5x: "
              f"{'met' if p / k <= 1.5 else 'NOT met'}); engine / kubectl = {e / k:.2f}x")
    finally:
        if not a.keep:
            log("tearing down the benchmark sandbox")
            Sandbox(NAME).down(progress=log)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
