"""The upgrade-cluster runbook's library: parameters, preflight, plan, apply, availability.

The notebook calls, in order::

    params = check_parameters(...)      # BadInput (exit 2) before anything runs
    pre = preflight(params)             # read-only findings
    the_plan = plan(params, pre)        # nodes to replace, duration, kops dry-run outputs
    result = apply(params, the_plan)    # dry run unless params.apply

Collection lives in :mod:`opsbook.k8s.upgrade`, the pure analysis in
:mod:`opsbook.analysis.upgrade`; on the sandbox provider, instances are replaced through
:mod:`opsbook.sandbox.rolling` (moto's ASG API plus a kops-shaped Node registration).

Safe to re-run after a stop at any point: what is left to do is read from the cluster (nodes whose
kubelet is older than the target); a node the run cordoned carries the annotation
``opsbook.io/upgrade`` saying what happened and what to do, and the surge instance it already
launched (``opsbook.io/upgrade-replacement``) is reused.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from kubernetes import client as k8s

from opsbook.analysis import upgrade as an
from opsbook.aws.s3url import parse_s3
from opsbook.errors import BadInput, RunbookFailed
from opsbook.k8s import inventory as k8s_inventory
from opsbook.k8s import upgrade as ku
from opsbook.k8s.client import api_client
from opsbook.k8s.objects import SAMPLE_COLUMNS
from opsbook.kops.apply import stream_kops
from opsbook.kops.plan import last_error, run_kops
from opsbook.kops.spec import ClusterSpec
from opsbook.kops.toolchain import KOPS_VERSION, channel_file, find_kops
from opsbook.plots.upgrade import ready_over_time as ready_over_time  # for the notebook
from opsbook.report import SEVERITY_RANK, Finding, object_id
from opsbook.runbooks.validate_cluster import validate_cluster
from opsbook.sandbox import rolling
from opsbook.sandbox.sandbox import Sandbox, _spec_from_dict

log = logging.getLogger(__name__)
Say = Callable[[str], None]
PROVIDERS = ("kops", "sandbox")
KOPS_DRY_RUN_TIMEOUT = 120.0  # seconds per kops dry run in the plan


@dataclass(frozen=True)
class Params:
    """Checked parameters, with what was read from the cluster to check them."""

    cluster_name: str
    state_store: str
    target: an.Version
    control_plane: str
    instance_groups: tuple[str, ...]
    known_groups: tuple[str, ...]
    max_surge: int
    max_unavailable: int
    drain_timeout: int
    validation_timeout: int
    apply: bool
    provider: str
    sandbox_name: str
    max_nodes: int
    kops_version: str
    target_note: str = ""

    def summary(self) -> dict[str, Any]:
        """For ``report.record``."""
        return {"cluster_name": self.cluster_name, "target": str(self.target), "target_note": self.target_note,
                "control_plane": self.control_plane, "instance_groups": list(self.instance_groups),
                "provider": self.provider, "apply": self.apply, "max_surge": self.max_surge,
                "drain_timeout": self.drain_timeout}


def _api() -> k8s.ApiClient:
    return api_client()


def _kops_version() -> tuple[str, Path | None]:
    kops = find_kops(KOPS_VERSION)
    return (KOPS_VERSION if kops else ""), kops


def _channel_target(kops_version: str, control_plane: str) -> tuple[str, str]:
    """The target for an empty ``target_version``, with a note saying where it came from.

    The kops channel's recommendation; when there is nothing newer, or no channel, the current
    version (the run then only checks).
    """
    cp = an.Version.parse(control_plane)
    if not kops_version or not channel_file(kops_version).exists():
        return str(cp), ("no target_version and no kops channel (kops is not built): nothing to upgrade. "
                         "Give target_version, e.g. -p target_version=1.34.4, or run `opsbook toolchain --kops`.")
    import yaml

    rec = an.channel_recommendation(yaml.safe_load(channel_file(kops_version).read_text()), kops_version)
    if not rec or an.Version.parse(rec) <= cp:
        return str(cp), (f"the kops {kops_version} stable channel recommends {rec or 'nothing'}; the control "
                         f"plane runs {cp}: nothing newer to upgrade to.")
    return rec, f"target from the kops {kops_version} stable channel: {rec}"


def check_parameters(cluster_name: str = "", state_store: str = "", target_version: str = "",
                     instance_groups: Sequence[str] | str = (), max_surge: int = 1, max_unavailable: int = 1,
                     drain_timeout: int = 300, validation_timeout: int = 600, apply: bool = False,
                     provider: str = "kops", sandbox_name: str = "", max_nodes: int = 0,
                     api: k8s.ApiClient | None = None, **_other: Any) -> Params:
    """Check the parameters against the cluster (read-only) before anything runs.

    Refused (:class:`BadInput`, exit 2): a target older than the control plane, more than one minor
    ahead, kubelets that would fall too far behind, an unknown instance group, an unknown provider,
    ``max_surge`` and ``max_unavailable`` both 0, a state store that is not ``s3://``.
    """
    if isinstance(instance_groups, str):
        instance_groups = [g.strip() for g in instance_groups.split(",") if g.strip()]
    problems = []
    if provider not in PROVIDERS:
        problems.append(f"provider {provider!r}: choose one of {', '.join(PROVIDERS)}.")
    if max_surge < 0 or max_unavailable < 0 or (max_surge == 0 and max_unavailable == 0):
        problems.append("max_surge and max_unavailable cannot both be 0 (nothing could ever be replaced).")
    if state_store and parse_s3(state_store) is None:
        problems.append(f"state_store {state_store!r} must be an s3:// URL, or empty for $KOPS_STATE_STORE.")
    if drain_timeout < 1 or validation_timeout < 1:
        problems.append("drain_timeout and validation_timeout must be at least 1 second.")
    if problems:
        raise BadInput(" ".join(problems))
    own = api is None
    api = api or _api()
    try:
        pods = k8s_inventory.list_json(api, "/api/v1/namespaces/kube-system/pods")
        nodes = ku.ClusterState(k8s_inventory.list_json(api, "/api/v1/nodes"), [], [], [], [], [], "").node_frame()
        cp = ku.control_plane_version(api, pods)
    finally:
        if own:
            api.close()  # type: ignore[no-untyped-call]
    kops_version, _ = _kops_version()
    target, note = target_version.strip(), "target_version given"
    if not target:
        target, note = _channel_target(kops_version, cp)
    known = tuple(sorted(g for g in set(nodes["instance_group"]) if g))
    t = an.check_target(target, cp, list(nodes["kubelet_version"]), list(instance_groups), known)
    return Params(cluster_name=cluster_name or os.environ.get("KOPS_CLUSTER_NAME", ""),
                  state_store=state_store or os.environ.get("KOPS_STATE_STORE", ""), target=t,
                  control_plane=str(an.Version.parse(cp)), instance_groups=tuple(instance_groups),
                  known_groups=known, max_surge=max_surge, max_unavailable=max_unavailable,
                  drain_timeout=drain_timeout, validation_timeout=validation_timeout, apply=apply,
                  provider=provider, sandbox_name=sandbox_name or os.environ.get("OPSBOOK_SANDBOX", "opsbook"),
                  max_nodes=max_nodes, kops_version=kops_version, target_note=note)


# -- preflight --------------------------------------------------------------------------------------


@dataclass
class Preflight:
    """Read-only findings before the upgrade.

    Attributes:
        findings: every finding (skew, APIs, drain blockers, capacity).
        nodes: per node ``name, instance_group, role, zone, kubelet_version, unschedulable, ready, ...``.
        capacity: per zone, from :func:`opsbook.analysis.upgrade.spare_capacity`.
        applied: objects' last-applied API versions.
        requested: the ``apiserver_requested_deprecated_apis`` series.
        state: the raw read.
    """

    findings: list[Finding]
    nodes: pd.DataFrame
    capacity: pd.DataFrame
    applied: pd.DataFrame
    requested: pd.DataFrame
    state: ku.ClusterState

    def findings_table(self) -> pd.DataFrame:
        """Most severe first: ``severity, check, object, message``."""
        df = pd.DataFrame([{"severity": f.severity, "check": f.check, "object": f.object, "message": f.message}
                           for f in self.findings], columns=["severity", "check", "object", "message"])
        return df.sort_values("severity", key=lambda s: s.map(SEVERITY_RANK), ascending=False,
                              kind="stable").reset_index(drop=True)

    def blocking(self) -> list[Finding]:
        """High/critical findings: they stop apply on provider kops."""
        return [f for f in self.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["high"]]


def preflight(params: Params, api: k8s.ApiClient | None = None) -> Preflight:
    """Read the cluster once and produce every preflight finding (changes nothing)."""
    own = api is None
    api = api or _api()
    try:
        st = ku.read_state(api)
    finally:
        if own:
            api.close()  # type: ignore[no-untyped-call]
    nodes = st.node_frame()
    findings = an.version_skew(params.target, st.server_version, nodes, params.kops_version, params.provider)
    applied = an.last_applied_versions(st.applied)
    requested = an.parse_deprecated_metric(st.metrics)
    findings += an.api_findings(params.target, applied, requested)
    for check, note in st.notes.items():
        findings.append(Finding(check, "low", note, group=an.GROUP))
    findings += an.drain_blockers(st.pdbs, st.workloads, st.pods, st.daemonsets)
    capacity, cap_findings = an.spare_capacity(an.node_load(st.nodes, st.pods), params.max_surge)
    findings += cap_findings
    return Preflight(findings, nodes, capacity, applied, requested, st)


# -- plan -------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What apply will do.

    Attributes:
        nodes: nodes to replace, in order (``order, name, instance_group, role, zone, kubelet_version``).
        estimate: duration estimate.
        commands: the kops commands (AWS) that do the same.
        kops_outputs: command -> output of the kops dry runs (empty when kops or the cluster is absent).
        notes: why something was skipped.
    """

    nodes: pd.DataFrame
    estimate: an.Estimate
    commands: list[str]
    kops_outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """For ``report.record``."""
        return {"nodes": list(self.nodes["name"]), "instance_groups": sorted(set(self.nodes["instance_group"])),
                "estimate_s": self.estimate.total_s, "estimate": self.estimate.line(),
                "kops_dry_runs": sorted(self.kops_outputs), "notes": self.notes}

    def kops_text(self) -> str:
        """The kops dry-run outputs, one block per command (or why there are none)."""
        if not self.kops_outputs:
            return "\n".join(self.notes) or "no kops dry run"
        return "\n\n".join(f"$ {cmd}\n{out}" for cmd, out in self.kops_outputs.items())


def kops_commands(params: Params, *, yes: bool = False) -> list[list[str]]:
    """``kops upgrade/update/rolling-update cluster`` for this upgrade (dry runs unless ``yes``)."""
    base = ["--name", params.cluster_name, "--state", params.state_store]
    y = ["--yes"] if yes else []
    igs = ["--instance-group", ",".join(params.instance_groups)] if params.instance_groups else []
    return [
        ["upgrade", "cluster", *base, "--kubernetes-version", str(params.target), *y],
        ["update", "cluster", *base, *y],
        ["rolling-update", "cluster", *base, *igs, "--drain-timeout", f"{params.drain_timeout}s",
         "--validation-timeout", f"{params.validation_timeout}s", *y],
    ]


def plan(params: Params, pre: Preflight) -> Plan:
    """Nodes to replace (control plane first), the estimate, and kops' own dry-run outputs."""
    todo = an.nodes_to_replace(pre.nodes, params.target, params.instance_groups)
    pods = [p for p in pre.state.pods if (p.get("spec") or {}).get("nodeName")]
    per_node = len(pods) / max(1, len(pre.nodes))
    est = an.estimate(len(todo), per_node, params.provider, params.drain_timeout)
    cmds = ["kops " + shlex.join(c) for c in kops_commands(params, yes=True)]
    outputs: dict[str, str] = {}
    notes: list[str] = []
    _, kops = _kops_version()
    if kops is None:
        notes.append("kops is not built: no kops dry run (run `opsbook toolchain --kops`)")
    elif not params.cluster_name or not params.state_store:
        notes.append("no cluster_name/state_store: no kops dry run")
    else:
        env = dict(os.environ)
        env.pop("KOPS_CLUSTER_NAME", None)
        for c in kops_commands(params):
            key = "kops " + shlex.join(c)
            try:
                proc = run_kops(kops, c, env, timeout=KOPS_DRY_RUN_TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                outputs[key] = (f"(stopped after {KOPS_DRY_RUN_TIMEOUT:.0f}s: kops was still working, e.g. "
                                "resolving container images on a registry it cannot reach)")
                continue
            text = (proc.stdout + proc.stderr).strip()
            outputs[key] = text if proc.returncode == 0 else f"(exit {proc.returncode}) {last_error(proc.stderr)}"
    return Plan(todo, est, cmds, outputs, notes)


# -- apply ------------------------------------------------------------------------------------------


STEP_COLUMNS = ["order", "node", "instance_group", "old_version", "replacement", "new_version", "evicted",
                "drain_s", "join_s", "validate_s", "result"]


@dataclass
class Rollout:
    """What apply did.

    Attributes:
        action: ``dry-run``, ``done``, ``stopped`` or ``nothing-to-do``.
        message: one paragraph.
        steps: one row per node (columns ``STEP_COLUMNS``).
        samples: the availability probe's samples.
        availability: per workload, from :func:`opsbook.analysis.upgrade.availability`.
        findings: stop reasons and availability findings.
        left_cordoned: nodes left cordoned, with their note.
    """

    action: str
    message: str
    steps: pd.DataFrame
    samples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SAMPLE_COLUMNS))
    availability: pd.DataFrame = field(default_factory=lambda: an.availability(
        pd.DataFrame(columns=SAMPLE_COLUMNS), pd.DataFrame()))
    findings: list[Finding] = field(default_factory=list)
    left_cordoned: dict[str, str] = field(default_factory=dict)
    started_at: str = ""

    def cordoned_table(self) -> pd.DataFrame:
        """The nodes left cordoned and the note each carries (columns ``node, note``; empty: none)."""
        return pd.DataFrame(sorted(self.left_cordoned.items()), columns=["node", "note"])

    def summary(self) -> dict[str, Any]:
        """For ``report.record``."""
        done = self.steps[self.steps["result"] == "replaced"] if len(self.steps) else self.steps
        return {"action": self.action, "message": self.message, "replaced": list(done["node"]),
                "replacements": list(done["replacement"]), "left_cordoned": self.left_cordoned,
                "samples": len(self.samples), "started_at": self.started_at,
                "availability": self.availability.to_dict("records") if len(self.availability) else []}


def _sandbox_spec(name: str) -> Any:
    st = Sandbox(name).state()
    if st is None:
        raise BadInput(f"sandbox {name!r} is not up: run `opsbook sandbox up --name {name}`")
    return ClusterSpec(**_spec_from_dict(st.spec))


def _validate(params: Params, api: k8s.ApiClient, say: Say) -> tuple[bool, str]:
    run = validate_cluster(params.cluster_name, wait=params.validation_timeout, count=1, interval=2,
                           fail_on="critical", api=api)
    return run.passed, run.summary_line()


def _roll_node(api: k8s.ApiClient, spec: Any, params: Params, row: Any, say: Say) -> dict[str, Any]:
    node, target = str(row.name), str(params.target)
    step: dict[str, Any] = {"order": row.order, "node": node, "instance_group": row.instance_group,
                            "old_version": row.kubelet_version, "replacement": "", "new_version": f"v{target}",
                            "evicted": 0, "drain_s": 0.0, "join_s": 0.0, "validate_s": 0.0, "result": ""}
    core = k8s.CoreV1Api(api)
    ann = core.read_node(node).metadata.annotations or {}
    surge = params.max_surge > 0 and row.role != "control-plane"
    say(f"[{row.order}] {node} ({row.instance_group}, {row.kubelet_version} -> v{target})")
    ku.cordon(api, node, f"upgrade-cluster to v{target} started {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}: "
                         "cordoned and draining. Re-run upgrade-cluster to continue, or "
                         f"`kubectl uncordon {node}` to give up on this node.")
    # a replacement this or an earlier (stopped) run launched: noted on the node, or in the ASG without a Node
    new_iid = ann.get(ku.REPLACEMENT, "") or rolling.unregistered_instance(api, spec, row.instance_group)
    t = time.monotonic()
    if surge:
        new_iid = new_iid or rolling.launch_replacement(spec, row.instance_group, row.instance_id, surge=True)
        ku.annotate(api, node, {ku.REPLACEMENT: new_iid})
        step["replacement"] = rolling.register_node(api, spec, new_iid, target)
        step["join_s"] = round(time.monotonic() - t, 2)
        say(f"    surge node {step['replacement']} ({new_iid}) joined Ready at v{target}")
    d = ku.drain(api, node, params.drain_timeout, say=say)
    step["evicted"], step["drain_s"] = len(d.evicted), round(d.seconds, 2)
    if not d.drained:
        pdbs = ", ".join(d.pdbs) or "none"
        why = "; ".join(f"{p}: {r}" for p, r in d.blocked.items())
        note = (f"upgrade-cluster to v{target} STOPPED {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}: drain timed out "
                f"after {params.drain_timeout}s, blocked by PDB {pdbs} ({why}). Node left cordoned. Fix the PDB "
                f"(or scale the workload) and re-run upgrade-cluster, or `kubectl uncordon {node}`.")
        ku.annotate(api, node, {ku.NOTE: note})
        step["result"] = f"blocked by PDB {pdbs}"
        step["blocked"], step["pdbs"], step["note"] = d.blocked, d.pdbs, note
        return step
    if not surge:
        t = time.monotonic()
        new_iid = new_iid or rolling.launch_replacement(spec, row.instance_group, row.instance_id, surge=False)
        ku.annotate(api, node, {ku.REPLACEMENT: new_iid})
        step["replacement"] = rolling.register_node(api, spec, new_iid, target)
        step["join_s"] = round(time.monotonic() - t, 2)
        say(f"    replacement {step['replacement']} ({new_iid}) joined Ready at v{target}")
    rolling.retire(api, spec, node, row.instance_id)
    say(f"    {node} drained ({len(d.evicted)} pods evicted in {d.seconds:.1f}s), instance {row.instance_id} "
        "terminated")
    t = time.monotonic()
    ok, line = _validate(params, api, say)
    step["validate_s"] = round(time.monotonic() - t, 2)
    say(f"    validation: {line}")
    step["result"] = "replaced" if ok else f"validation failed: {line}"
    return step


def apply(params: Params, the_plan: Plan, *, preflight: Preflight | None = None, api: k8s.ApiClient | None = None,
          say: Say = print, probe_interval: float = 1.0) -> Rollout:
    """Roll the nodes (only with ``params.apply``; a dry run lists them and changes nothing).

    Provider ``sandbox``: per node, cordon, (surge node joins), drain through the Eviction API until
    ``drain_timeout``, replacement joins Ready at the target kubelet version, old instance terminated,
    validation passes, next node; stops at the first blocked drain or failed validation. An availability
    probe samples every workload meanwhile. Provider ``kops``: the kops commands with ``--yes``, output
    streamed, stop on the first failure.
    """
    started = datetime.now(UTC).isoformat()
    if not params.apply:
        steps = the_plan.nodes.rename(columns={"name": "node", "kubelet_version": "old_version"}).assign(
            new_version=f"v{params.target}", replacement="", result="would replace")
        return Rollout("dry-run", f"dry run (apply=false): would replace {len(steps)} nodes "
                       f"({', '.join(steps['node'])}) with v{params.target}; nothing was changed. "
                       f"Estimate: {the_plan.estimate.line()}.", steps, started_at=started)
    if params.provider == "kops":
        blocking = preflight.blocking() if preflight else []
        if blocking:
            return Rollout("refused", f"apply refused: {len(blocking)} preflight findings are high or critical "
                           f"({', '.join(sorted({f.check for f in blocking}))}); fix them and re-run.",
                           pd.DataFrame(columns=STEP_COLUMNS), findings=blocking, started_at=started)
        return _apply_kops(params, say, started)
    own = api is None
    api = api or _api()
    try:
        return _apply_sandbox(params, api, say, probe_interval, started)
    finally:
        if own:
            api.close()  # type: ignore[no-untyped-call]


def _remaining(api: k8s.ApiClient, params: Params) -> pd.DataFrame:
    nodes = ku.ClusterState(k8s_inventory.list_json(api, "/api/v1/nodes"), [], [], [], [], [], "").node_frame()
    return an.nodes_to_replace(nodes, params.target, params.instance_groups)


def _apply_sandbox(params: Params, api: k8s.ApiClient, say: Say, interval: float, started: str) -> Rollout:
    spec = _sandbox_spec(params.sandbox_name)
    todo = _remaining(api, params)
    if params.max_nodes:
        todo = todo.head(params.max_nodes)
    if todo.empty:
        return Rollout("nothing-to-do", f"every node already runs v{params.target}", pd.DataFrame(
            columns=STEP_COLUMNS), started_at=started)
    workloads = (k8s_inventory.list_json(api, "/apis/apps/v1/deployments")
                 + k8s_inventory.list_json(api, "/apis/apps/v1/statefulsets"))
    budgets = ku.budgets(k8s_inventory.list_json(api, "/apis/policy/v1/poddisruptionbudgets"), workloads)
    probe = ku.Probe(api, interval=interval).start()
    steps: list[dict[str, Any]] = []
    findings: list[Finding] = []
    action = "done"
    try:
        for row in todo.itertuples():
            step = _roll_node(api, spec, params, row, say)
            steps.append(step)
            if step["result"] != "replaced":
                action = "stopped"
                findings.append(Finding(
                    "upgrade.apply.stopped", "high",
                    f"the upgrade stopped at node {step['node']}: {step['result']}. "
                    + (step.get("note") or "Fix the cause and re-run upgrade-cluster: it continues with the "
                       "nodes still at the old version."),
                    object=object_id("Node", step["node"]), group=an.GROUP,
                    data={"pdbs": step.get("pdbs", []), "blocked": step.get("blocked", {})}))
                break
    finally:
        samples = probe.stop()
    avail = an.availability(samples, budgets)
    findings += an.downtime_findings(avail)
    left = {n: note for n, note in _cordoned(api).items()}
    done = [s for s in steps if s["result"] == "replaced"]
    remaining = len(_remaining(api, params))
    msg = (f"replaced {len(done)} of {len(todo)} nodes with v{params.target}"
           + (f"; stopped at {steps[-1]['node']}: {steps[-1]['result']}" if action == "stopped" else "")
           + (f"; {remaining} nodes still at the old version: re-run to continue" if remaining else
              "; every node runs the target version"))
    say(msg)
    return Rollout(action, msg, pd.DataFrame(steps, columns=STEP_COLUMNS), samples, avail, findings, left, started)


def _cordoned(api: k8s.ApiClient) -> dict[str, str]:
    out = {}
    for n in k8s_inventory.list_json(api, "/api/v1/nodes"):
        if (n.get("spec") or {}).get("unschedulable"):
            out[n["metadata"]["name"]] = ((n["metadata"].get("annotations") or {}).get(ku.NOTE)
                                          or "cordoned WITHOUT a note (not by upgrade-cluster)")
    return out


def _apply_kops(params: Params, say: Say, started: str) -> Rollout:
    _, kops = _kops_version()
    if kops is None:
        raise RunbookFailed("kops is not built: run `opsbook toolchain --kops` (provider kops needs it)")
    env = dict(os.environ)
    env.pop("KOPS_CLUSTER_NAME", None)
    rows: list[dict[str, Any]] = []
    for c in kops_commands(params, yes=True):
        rc, _ = stream_kops(kops, c, env, say, timeout=params.validation_timeout + 3600)
        rows.append({"order": len(rows) + 1, "node": "kops " + " ".join(c[:2]), "result": f"exit {rc}"})
        if rc != 0:
            return Rollout("stopped", f"`kops {shlex.join(c)}` exited {rc}: fix it and re-run (kops resumes)",
                           pd.DataFrame(rows), findings=[Finding("upgrade.apply.stopped", "high",
                                                                 f"kops {' '.join(c[:2])} exited {rc}",
                                                                 group=an.GROUP)], started_at=started)
    return Rollout("done", "kops upgrade, update and rolling-update finished", pd.DataFrame(rows),
                   started_at=started)
