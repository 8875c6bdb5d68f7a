"""Validate a cluster: ``kops validate cluster`` parity plus opsbook's own checks (beyond kops).

Every check turns a snapshot (:class:`opsbook.k8s.objects.Snapshot`) into
*evaluations*: one row per object it looked at, with an empty severity when the
object passed. Findings are the evaluations with a severity. The same frame
gives the score, so exclusions cannot distort it: an excluded row leaves the
numerator *and* the denominator, and is listed.

Two families of checks:

* **kops** (group ``kops``): exactly what kops v1.33.1 validates, rule for rule
  (:mod:`opsbook.analysis.kops_parity`); its failures are listed as kops lists them
  (``Validation.kops``: ``type, name, message, instanceGroup``; ``nodes``) and
  ``Validation.kops_passed`` is what kops would answer. Differential tests compare
  them with the real kops binary on the sandbox.
* **beyond kops** (every other group): opsbook's own checks and policies, which
  kops does not have: node pressure/cordon/burstable, workloads, config,
  certificates, and the policies ``max_unready_nodes`` (tolerate some NotReady
  workers kops would fail) and ``exclude`` (known noise). kops has neither flag.

Checks (id, group, severity):

===================================  =============  =========================================
``kops.instancegroup.size``          kops           high (critical for a control-plane group)
``kops.instancegroup.missing``       kops           high (critical for a control-plane group)
``kops.instance.joined``             kops           high (critical for a control-plane group)
``kops.node.ready``                  kops           high (critical for a control-plane node)
``kops.controlplane.components``     kops           critical
``kops.pod.system_critical``         kops           high
``kops.dns.apiserver``               kops           high
``nodes.pressure``                   nodes          high
``nodes.unschedulable``              nodes          low
``nodes.burstable``                  nodes          info (for the CPU-credit review)
``workloads.pending``                workloads      medium
``workloads.crashloop``              workloads      high
``workloads.image_pull``             workloads      high
``workloads.restarts``               workloads      medium
``workloads.oomkilled``              workloads      medium
``workloads.deployment_available``   workloads      medium (high when none is available)
``workloads.single_replica``         workloads      low
``workloads.pdb_blocks_drain``       workloads      medium
``config.resources``                 config         low
``config.image_tag``                 config         low
``config.service_endpoints``         config         medium
``certs.expiry``                     certificates   medium / high (≤7 d) / critical (expired)
``certs.apiserver``                  certificates   medium / high (≤7 d) / critical (expired)
===================================  =============  =========================================

opsbook's verdict (``passed``) holds when no kops failure is left after opsbook's
policies and no beyond-kops finding reaches ``fail_on``. :func:`validate_until`
repeats validation like kops' ``--wait``/``--count``/``--interval``.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from opsbook.analysis import certs as certmod
from opsbook.analysis import kops_parity as kp
from opsbook.aws import kops_model
from opsbook.data.tables import is_burstable
from opsbook.errors import BadInput, OpsbookError
from opsbook.k8s import objects
from opsbook.k8s.objects import Snapshot
from opsbook.report import SEVERITIES, SEVERITY_RANK, Finding

log = logging.getLogger(__name__)

CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
CRITICAL_PRIORITY = 2_000_000_000

CHECKS: dict[str, str] = {  # check id -> group
    "kops.instancegroup.size": "kops",
    "kops.instancegroup.missing": "kops",
    "kops.instance.joined": "kops",
    "kops.node.ready": "kops",
    "kops.controlplane.components": "kops",
    "kops.pod.system_critical": "kops",
    "kops.dns.apiserver": "kops",
    "nodes.pressure": "nodes",
    "nodes.unschedulable": "nodes",
    "nodes.burstable": "nodes",
    "workloads.pending": "workloads",
    "workloads.crashloop": "workloads",
    "workloads.image_pull": "workloads",
    "workloads.restarts": "workloads",
    "workloads.oomkilled": "workloads",
    "workloads.deployment_available": "workloads",
    "workloads.single_replica": "workloads",
    "workloads.pdb_blocks_drain": "workloads",
    "config.resources": "config",
    "config.image_tag": "config",
    "config.service_endpoints": "config",
    "certs.expiry": "certificates",
    "certs.apiserver": "certificates",
}
# which snapshot kinds each check needs (a forbidden kind degrades these checks)
NEEDS: dict[str, tuple[str, ...]] = {
    "nodes": ("kops.instancegroup.size", "kops.instancegroup.missing", "kops.instance.joined", "kops.node.ready",
              "kops.controlplane.components", "nodes.pressure", "nodes.unschedulable", "nodes.burstable"),
    "pods": ("kops.controlplane.components", "kops.pod.system_critical", "workloads.pending",
             "workloads.crashloop", "workloads.image_pull", "workloads.restarts", "workloads.oomkilled",
             "config.resources", "config.image_tag"),
    "deployments": ("workloads.deployment_available", "workloads.single_replica"),
    "pdbs": ("workloads.pdb_blocks_drain",),
    "services": ("config.service_endpoints",),
    "endpointslices": ("config.service_endpoints",),
    "secrets": ("certs.expiry",),
    "configmaps": ("certs.expiry",),
}
EVAL_COLUMNS = ["check", "group", "object", "namespace", "severity", "message", "evidence"]
WAITING_IMAGE = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
EXCLUDE_KINDS = ("namespace", "check", "object")


@dataclass(frozen=True)
class Options:
    """How strict the validation is.

    ``max_unready_nodes`` and ``exclude`` are opsbook policies (beyond kops): kops validate has
    no such flags and still fails what they tolerate; the kops verdict is reported unchanged.

    Attributes:
        max_unready_nodes: worker nodes whose kops ``Node`` failure opsbook tolerates (control-plane
            nodes never are).
        cert_days: certificates expiring within this many days are reported.
        restart_threshold: a pod restarted at least this often is reported.
        pending_grace_s: a pod Pending for less than this is not (yet) reported.
        fail_on: the lowest severity (outside the kops checks) that fails the validation.
        exclude: known noise, ``namespace:<glob>``, ``check:<glob>`` or ``object:<glob>``.
    """

    max_unready_nodes: int = 0
    cert_days: int = 30
    restart_threshold: int = 5
    pending_grace_s: int = 120
    fail_on: str = "high"
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fail_on not in SEVERITY_RANK or self.fail_on == "info":
            raise BadInput(f"fail_on {self.fail_on!r} is not one of low, medium, high, critical")
        if self.max_unready_nodes < 0 or self.cert_days < 0 or self.restart_threshold < 1:
            raise BadInput("max_unready_nodes and cert_days must be >= 0, restart_threshold >= 1")
        parse_exclude(self.exclude)


@dataclass
class Inputs:
    """Everything one validation looks at: the snapshot plus the AWS side.

    Attributes:
        snapshot: the cluster snapshot.
        targets: target size per instance group (see :mod:`opsbook.aws.asg`).
        instances: the cluster's cloud instances, or None when AWS could not be read.
        apiserver_certs: the API server's serving certificate (``Snapshot.certs`` columns).
        notes: check or source -> why it is degraded.
        aws_calls: AWS API calls made.
        igs: the instance groups kops validates (:func:`opsbook.aws.asg.state_store_instance_groups`;
            from the ASGs' tags when no state store was read); None without AWS.
        cloud: the ASGs, members and instances as kops reads them; None without AWS.
        api_addresses: what the API server's name resolves to (non-gossip clusters), for kops'
            ``dns/apiserver`` check; None when not checked.
    """

    snapshot: Snapshot
    targets: pd.DataFrame
    instances: pd.DataFrame | None
    apiserver_certs: pd.DataFrame
    notes: dict[str, str] = field(default_factory=dict)
    aws_calls: int = 0
    igs: pd.DataFrame | None = None
    cloud: kops_model.KopsCloud | None = None
    api_addresses: list[str] | None = None


@dataclass
class Validation:
    """The result of one validation.

    Attributes:
        evaluations: every evaluation that counts (``check, group, object, namespace, severity,
            message, evidence``; empty severity = passed).
        findings: the evaluations with a severity, most severe first.
        excluded: evaluations removed by ``exclude``, with the ``rule`` that removed them.
        notes: degraded checks: ``check, note``.
        score: percentage of counted evaluations without a finding above ``info``.
        passed: opsbook's verdict: no kops failure left after opsbook's policies (``max_unready_nodes``,
            ``exclude``) and no beyond-kops finding at ``fail_on`` or above.
        kops_failures: number of failures real ``kops validate cluster`` would list.
        inputs: what was looked at.
        at: when (UTC).
        kops: the kops verdict (``failures``/``nodes`` as ``kops validate cluster -o json``).
        tolerated: worker nodes whose kops failure opsbook's ``max_unready_nodes`` tolerated.
    """

    evaluations: pd.DataFrame
    findings: pd.DataFrame
    excluded: pd.DataFrame
    notes: pd.DataFrame
    score: float
    passed: bool
    kops_failures: int
    inputs: Inputs
    at: datetime
    kops: kp.KopsVerdict = field(default_factory=lambda: kp.KopsVerdict(
        pd.DataFrame(columns=kp.FAILURE_COLUMNS), pd.DataFrame(columns=kp.NODE_COLUMNS),
        pd.DataFrame(columns=kp.GROUP_COLUMNS), pd.DataFrame(columns=kp.MEMBER_COLUMNS)))
    tolerated: list[str] = field(default_factory=list)

    @property
    def kops_passed(self) -> bool:
        """What ``kops validate cluster`` would say (exit 0): no kops failure."""
        return self.kops.passed

    def exclusions(self) -> pd.DataFrame:
        """Per exclude rule, the evaluations and findings it removed: ``rule, evaluations, findings``."""
        if self.excluded.empty:
            return pd.DataFrame(columns=["rule", "evaluations", "findings"])
        g = self.excluded.assign(finding=self.excluded["severity"] != "").groupby("rule")
        return pd.DataFrame({"evaluations": g.size(), "findings": g["finding"].sum()}).reset_index()


# -- exclusions -------------------------------------------------------------------------------------

def parse_exclude(rules: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """``["namespace:kube-*", "check:config.*"]`` -> ``[("namespace", "kube-*"), ...]``.

    Raises:
        BadInput: a rule without one of the prefixes ``namespace:``, ``check:``, ``object:``.
    """
    out = []
    for r in rules:
        kind, sep, pattern = str(r).partition(":")
        if not sep or kind not in EXCLUDE_KINDS or not pattern:
            raise BadInput(f"exclude rule {r!r} must look like namespace:<glob>, check:<glob> or "
                           "object:<glob> (e.g. namespace:kube-system, check:config.*, "
                           "object:pod/default/legacy-*)")
        out.append((kind, pattern))
    return out


def apply_exclude(evals: pd.DataFrame,
                  rules: tuple[str, ...] | list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split evaluations into (kept, excluded); ``excluded`` gains the ``rule`` that matched first."""
    rule_of = pd.Series("", index=evals.index)
    for kind, pattern in parse_exclude(rules):
        col = {"namespace": "namespace", "check": "check", "object": "object"}[kind]
        hit = evals[col].astype(str).str.match(fnmatch.translate(pattern)) & (rule_of == "")
        rule_of[hit] = f"{kind}:{pattern}"
    mask = rule_of != ""
    return evals[~mask], evals[mask].assign(rule=rule_of[mask])


def score(evals: pd.DataFrame) -> float:
    """Percentage of evaluations without a finding above ``info`` (100 when nothing was evaluated)."""
    if evals.empty:
        return 100.0
    failing = ~evals["severity"].isin(["", "info"])
    return round(100.0 * (1 - float(failing.sum()) / len(evals)), 1)


# -- building evaluation frames --------------------------------------------------------------------

def _evals(check: str, df: pd.DataFrame, mask: pd.Series | None, severity: str | pd.Series,
           message: Callable[[Any], str], evidence: Callable[[Any], str] | None = None) -> pd.DataFrame:
    """One evaluation per row of ``df``; rows where ``mask`` is true fail with ``severity``."""
    ns = df["namespace"] if "namespace" in df else pd.Series("", index=df.index)
    out = pd.DataFrame({"check": check, "group": CHECKS[check], "object": df["object"].to_numpy(),
                        "namespace": ns.to_numpy(), "severity": "", "message": "", "evidence": ""},
                       columns=EVAL_COLUMNS)
    if mask is None or df.empty:
        return out
    m = mask.to_numpy(dtype=bool)
    if not m.any():
        return out
    failing = df[m]
    sev = severity[m].to_numpy() if isinstance(severity, pd.Series) else severity
    out.loc[m, "severity"] = sev
    out.loc[m, "message"] = [message(r) for r in failing.itertuples(index=False)]
    if evidence:
        out.loc[m, "evidence"] = [evidence(r) for r in failing.itertuples(index=False)]
    return out


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=EVAL_COLUMNS)


# -- kops parity ------------------------------------------------------------------------------------

def _kops_check(failure_type: str, message: str) -> str:
    if failure_type == "InstanceGroup":
        return "kops.instancegroup.missing" if "missing from the cloud provider" in message else \
            "kops.instancegroup.size"
    if failure_type == "Node":
        return "kops.controlplane.components" if " is missing " in message else "kops.node.ready"
    return {"Machine": "kops.instance.joined", "Pod": "kops.pod.system_critical",
            "dns": "kops.dns.apiserver"}.get(failure_type, "kops.node.ready")


_EVIDENCE = {
    "kops.instancegroup.size": "aws autoscaling describe-scaling-activities --auto-scaling-group-name {asg}",
    "kops.instancegroup.missing": "aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names {asg}",
    "kops.instance.joined": "aws ec2 get-console-output --instance-id {name}",
    "kops.node.ready": "kubectl describe node {name}",
    "kops.controlplane.components": "kubectl -n kube-system get pods -o wide --field-selector spec.nodeName={name}",
    "kops.pod.system_critical": "kubectl -n {ns} describe pod {pod}",
    "kops.dns.apiserver": "dig +short api.<cluster> (dns-controller logs)",
}
_ADVICE = {
    "kops.instancegroup.size": " Check the ASG's activity history.",
    "kops.instancegroup.missing": " Its ASG is gone or being deleted: `kops update cluster --yes` recreates it.",
    "kops.instance.joined": " Check its system log, nodeup and kubelet.",
    "kops.node.ready": " Check its kubelet (`kubectl describe node`, instance status checks).",
    "kops.controlplane.components": " The static pod manifest or the kubelet on that node is broken.",
    "kops.pod.system_critical": "",
    "kops.dns.apiserver": "",
}


def kops_evaluations(verdict: kp.KopsVerdict, nodes: pd.DataFrame, pods: pd.DataFrame) -> pd.DataFrame:
    """The kops group as evaluations: every object kops looked at, failing where kops fails.

    Severity ``critical`` for the control plane (its group, nodes and components), else ``high``.
    Each failing row's ``evidence`` starts with kops' ``type/name``.
    """
    cp_groups = set(verdict.groups.loc[verdict.groups["role"] == "control-plane", "instance_group"])
    asg_of = dict(zip(verdict.groups["instance_group"], verdict.groups["asg"], strict=True))
    rows: list[dict[str, Any]] = []
    failing: set[tuple[str, str]] = set()
    for f in verdict.failures.itertuples(index=False):
        check = _kops_check(f.type, f.message)
        if check in ("kops.instancegroup.size", "kops.instancegroup.missing"):
            obj = f"instancegroup/{f.name}"
        elif check == "kops.instance.joined":
            obj = f"instance/{f.name}"
        elif check == "kops.pod.system_critical":
            obj = f"pod/{f.name}"
        elif check == "kops.dns.apiserver":
            obj = "dns/apiserver"
        else:
            obj = f"node/{f.name}"
        failing.add((check, obj))
        critical = f.instance_group in cp_groups or check == "kops.controlplane.components"
        ns, _, pod = f.name.partition("/")
        how = _EVIDENCE[check].format(asg=asg_of.get(f.name, f.name), name=f.name, ns=ns, pod=pod)
        rows.append({"check": check, "group": "kops", "object": obj,
                     "namespace": ns if check == "kops.pod.system_critical" else "",
                     "severity": "critical" if critical else "high",
                     "message": f"kops: {f.message}.{_ADVICE[check]}",
                     "evidence": f"kops {f.type}/{f.name}; {how}"})
    passed: list[tuple[str, str, str]] = []
    g = verdict.groups
    passed += [("kops.instancegroup.missing", f"instancegroup/{i}", "") for i in g["instance_group"]]
    passed += [("kops.instancegroup.size", f"instancegroup/{i}", "") for i in g.loc[g["found"], "instance_group"]]
    m = verdict.members
    passed += [("kops.instance.joined", f"instance/{i}", "") for i in m["instance_id"]]
    passed += [("kops.node.ready", f"node/{n}", "") for n in verdict.nodes["name"]]
    ready_cp = nodes[nodes["name"].isin(verdict.nodes["name"]) & nodes["control_plane_label"].astype(bool)]
    passed += [("kops.controlplane.components", f"node/{n}", "") for n in ready_cp["name"]]
    crit = pods[pods["priority_class"].isin(kp.CRITICAL_CLASSES) & (pods["phase"] != "Succeeded")]
    passed += [("kops.pod.system_critical", f"pod/{ns}/{n}", ns) for ns, n in zip(crit["namespace"], crit["name"],
                                                                                  strict=True)]
    seen = set(failing)
    for check, obj, ns in passed:
        if (check, obj) not in seen:
            seen.add((check, obj))
            rows.append({"check": check, "group": "kops", "object": obj, "namespace": ns, "severity": "",
                         "message": "", "evidence": ""})
    return pd.DataFrame(rows, columns=EVAL_COLUMNS)


def tolerate_unready(evals: pd.DataFrame, nodes: pd.DataFrame, max_unready_nodes: int) -> tuple[pd.DataFrame,
                                                                                                 list[str]]:
    """Opsbook's ``max_unready_nodes`` policy (beyond kops; kops has no such flag and fails these).

    The first ``max_unready_nodes`` failing worker nodes (by name) of ``kops.node.ready`` drop to
    ``low``; the message says kops still fails them. Returns the frame and the tolerated nodes.
    """
    if not max_unready_nodes or evals.empty:
        return evals, []
    workers = set(nodes.loc[nodes["role"] != "control-plane", "name"])
    bad = evals[(evals["check"] == "kops.node.ready") & evals["severity"].isin(["high"])
                & evals["object"].str.removeprefix("node/").isin(workers)]
    chosen = bad.sort_values("object").head(max_unready_nodes)
    out = evals.copy()
    out.loc[chosen.index, "severity"] = "low"
    out.loc[chosen.index, "message"] = out.loc[chosen.index, "message"] + (
        f" kops fails this; tolerated by opsbook's max_unready_nodes={max_unready_nodes} (beyond kops: "
        "kops validate has no such flag).")
    return out, [o.removeprefix("node/") for o in chosen["object"]]


# -- nodes ------------------------------------------------------------------------------------------

def check_node_pressure(nodes: pd.DataFrame) -> pd.DataFrame:
    """``nodes.pressure``: no Memory/Disk/PID pressure."""
    return _evals("nodes.pressure", nodes, nodes["pressure"] != "", "high",
                  lambda r: (f"node {r.name} reports {r.pressure}: the kubelet evicts pods; "
                             "free or add capacity."),
                  lambda r: f"kubectl describe node {r.name}")


def check_node_unschedulable(nodes: pd.DataFrame) -> pd.DataFrame:
    """``nodes.unschedulable``: cordoned nodes (forgotten after maintenance?)."""
    return _evals("nodes.unschedulable", nodes, nodes["unschedulable"].astype(bool), "low",
                  lambda r: (f"node {r.name} is cordoned: `kubectl uncordon {r.name}` "
                             "when maintenance is done."))


def burstable(instance_type: str) -> bool:
    """Whether an EC2 instance type earns CPU credits (t2, t3, t3a, t4g): it is in the credit table."""
    return is_burstable(instance_type)


def check_node_burstable(nodes: pd.DataFrame) -> pd.DataFrame:
    """``nodes.burstable``: nodes on burstable instance types, for the CPU-credit review."""
    mask = nodes["instance_type"].map(burstable).astype(bool) if not nodes.empty else None
    return _evals("nodes.burstable", nodes, mask, "info",
                  lambda r: (f"node {r.name} runs on burstable {r.instance_type}: review its CPU credits "
                             "(cpu-credits runbook)."))


# -- workloads --------------------------------------------------------------------------------------

def _live(pods: pd.DataFrame) -> pd.DataFrame:
    # (astype: an empty frame's object column would index columns instead of rows)
    return pods[~pods["terminating"].astype(bool)]


def check_pending(pods: pd.DataFrame, now: datetime, grace_s: int = 120) -> pd.DataFrame:
    """``workloads.pending``: pods Pending longer than ``grace_s``, with the scheduler's reason."""
    live = _live(pods)
    age = (pd.Timestamp(now) - pd.to_datetime(live["created"], utc=True)).dt.total_seconds()
    mask = (live["phase"] == "Pending") & (age.fillna(0) >= grace_s)

    def msg(r: Any) -> str:
        why = (f"{r.scheduled_reason}: {r.scheduled_message}" if r.scheduled_reason
               else r.waiting_reason or "not yet started")
        return f"pod {r.namespace}/{r.name} is Pending: {why}"

    return _evals("workloads.pending", live, mask, "medium", msg,
                  lambda r: f"kubectl -n {r.namespace} describe pod {r.name}")


def check_crashloop(pods: pd.DataFrame) -> pd.DataFrame:
    """``workloads.crashloop``: containers in CrashLoopBackOff."""
    live = _live(pods)
    return _evals("workloads.crashloop", live, live["waiting_reason"] == "CrashLoopBackOff", "high",
                  lambda r: (f"pod {r.namespace}/{r.name} is in CrashLoopBackOff after {r.restarts} restarts"
                             f"{' (last exit: OOMKilled)' if r.oom_killed else ''}: {r.waiting_message}"),
                  lambda r: f"kubectl -n {r.namespace} logs {r.name} --previous")


def check_image_pull(pods: pd.DataFrame) -> pd.DataFrame:
    """``workloads.image_pull``: containers that cannot pull their image."""
    live = _live(pods)
    return _evals("workloads.image_pull", live, live["waiting_reason"].isin(WAITING_IMAGE), "high",
                  lambda r: (f"pod {r.namespace}/{r.name} cannot pull its image ({r.waiting_reason}): "
                             f"{r.waiting_message or 'check the image name, tag and registry credentials.'}"),
                  lambda r: f"kubectl -n {r.namespace} describe pod {r.name}")


def check_restarts(pods: pd.DataFrame, threshold: int = 5) -> pd.DataFrame:
    """``workloads.restarts``: pods whose containers restarted at least ``threshold`` times."""
    live = _live(pods)
    return _evals("workloads.restarts", live, live["restarts"] >= threshold, "medium",
                  lambda r: (f"pod {r.namespace}/{r.name} restarted {r.restarts} times "
                             f"(threshold {threshold})"),
                  lambda r: f"kubectl -n {r.namespace} logs {r.name} --previous")


def check_oomkilled(pods: pd.DataFrame) -> pd.DataFrame:
    """``workloads.oomkilled``: a container's last termination was OOMKilled."""
    live = _live(pods)
    return _evals("workloads.oomkilled", live, live["oom_killed"].astype(bool), "medium",
                  lambda r: (f"pod {r.namespace}/{r.name} was OOMKilled: raise its memory limit "
                             "or fix the leak."))


def check_deployments(deployments: pd.DataFrame) -> pd.DataFrame:
    """``workloads.deployment_available``: available replicas below desired."""
    d = deployments
    sev = pd.Series("medium", index=d.index).mask(d["available"] == 0, "high")
    return _evals("workloads.deployment_available", d, d["available"] < d["desired"], sev,
                  lambda r: (f"deployment {r.namespace}/{r.name}: {r.available}/{r.desired} "
                             "replicas available."),
                  lambda r: f"kubectl -n {r.namespace} rollout status deployment/{r.name}")


def check_single_replica(deployments: pd.DataFrame) -> pd.DataFrame:
    """``workloads.single_replica``: deployments with one replica (no redundancy during a drain)."""
    d = deployments
    return _evals("workloads.single_replica", d, d["desired"] == 1, "low",
                  lambda r: (f"deployment {r.namespace}/{r.name} runs one replica: it is down "
                             "during every drain."))


def check_pdbs(pdbs: pd.DataFrame) -> pd.DataFrame:
    """``workloads.pdb_blocks_drain``: PodDisruptionBudgets that allow no disruption (block every drain)."""
    b = pdbs
    mask = (b["disruptions_allowed"] == 0) & (b["expected_pods"] > 0)

    def msg(r: Any) -> str:
        spec = f"minAvailable={r.min_available}" if r.min_available else f"maxUnavailable={r.max_unavailable}"
        return (f"PDB {r.namespace}/{r.name} allows 0 disruptions ({spec}, "
                f"{r.current_healthy}/{r.expected_pods} healthy): node drains and rolling updates "
                "will hang on its pods.")

    return _evals("workloads.pdb_blocks_drain", b, mask, "medium", msg,
                  lambda r: f"kubectl -n {r.namespace} get pdb {r.name} -o yaml")


# -- configuration ----------------------------------------------------------------------------------

def _workloads(pods: pd.DataFrame) -> pd.DataFrame:
    """One representative pod per owning workload (config is the same for all its pods)."""
    live = _live(pods)
    rep = live.drop_duplicates("workload")
    return rep.assign(object=rep["workload"])


def image_tag_problem(image: str) -> str:
    """``"untagged"``, ``"latest"`` or ``""`` for an image reference (digests are pinned)."""
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged"
    return "latest" if last.rsplit(":", 1)[1] == "latest" else ""


def check_resources(pods: pd.DataFrame) -> pd.DataFrame:
    """``config.resources``: containers without CPU+memory requests or a memory limit (per workload)."""
    w = _workloads(pods)
    missing = w["containers"].map(lambda cs: [c[0] for c in cs if not (c[2] and c[3])])

    def msg(r: Any) -> str:
        bad = [c for c in r.containers if not (c[2] and c[3])]
        parts = [f"{c[0]} ({'no requests' if not c[2] else ''}{', ' if not c[2] and not c[3] else ''}"
                 f"{'no memory limit' if not c[3] else ''})" for c in bad]
        return f"{r.workload}: containers without requests/limits: {', '.join(parts)}."

    return _evals("config.resources", w, missing.map(bool), "low", msg)


def check_image_tags(pods: pd.DataFrame) -> pd.DataFrame:
    """``config.image_tag``: images on ``latest`` or untagged (per workload)."""
    w = _workloads(pods)
    bad = w["containers"].map(lambda cs: [f"{c[1]} ({p})" for c in cs if (p := image_tag_problem(c[1]))])
    return _evals("config.image_tag", w.assign(bad=bad), bad.map(bool), "low",
                  lambda r: f"{r.workload}: unpinned images {', '.join(r.bad)}: pin a version tag or digest.")


def check_service_endpoints(services: pd.DataFrame) -> pd.DataFrame:
    """``config.service_endpoints``: services with a selector but no ready endpoint."""
    s = services[(services["type"] != "ExternalName") & services["has_selector"].astype(bool)]
    if s["ready_endpoints"].isna().any():
        return _empty()
    return _evals("config.service_endpoints", s, s["ready_endpoints"].astype(int) == 0, "medium",
                  lambda r: (f"service {r.namespace}/{r.name} has no ready endpoints: its selector matches "
                             "no ready pod, callers get connection refused."),
                  lambda r: f"kubectl -n {r.namespace} get endpointslices "
                  f"-l kubernetes.io/service-name={r.name}")


def check_certs(certs: pd.DataFrame, now: datetime, days: int, check: str = "certs.expiry") -> pd.DataFrame:
    """``certs.expiry`` / ``certs.apiserver``: certificates expiring within ``days``."""
    ev = certmod.expiry_evaluations(certs, now, days)
    if ev.empty:
        return _empty()
    return ev.assign(check=check, group=CHECKS[check])[EVAL_COLUMNS]


# -- one validation ---------------------------------------------------------------------------------

def evaluate(inputs: Inputs, options: Options | None = None, now: datetime | None = None) -> Validation:
    """Run every check on ``inputs`` (pure: no API calls).

    Args:
        inputs: snapshot + AWS side, from :func:`collect`.
        options: thresholds, ``fail_on`` and exclusions.
        now: reference time (default: the snapshot's time).
    """
    o = options or Options()
    snap = inputs.snapshot
    now = now or snap.taken_at
    n, p = snap.nodes, snap.pods
    verdict = kops_verdict(inputs)
    kops_evals, tolerated = tolerate_unready(kops_evaluations(verdict, n, p), n, o.max_unready_nodes)
    parts = [
        kops_evals,
        check_node_pressure(n), check_node_unschedulable(n), check_node_burstable(n),
        check_pending(p, now, o.pending_grace_s), check_crashloop(p), check_image_pull(p),
        check_restarts(p, o.restart_threshold), check_oomkilled(p),
        check_deployments(snap.deployments), check_single_replica(snap.deployments), check_pdbs(snap.pdbs),
        check_resources(p), check_image_tags(p), check_service_endpoints(snap.services),
        check_certs(snap.certs, now, o.cert_days), check_certs(inputs.apiserver_certs, now, o.cert_days,
                                                              "certs.apiserver"),
    ]
    evals = pd.concat([x for x in parts if not x.empty] or [_empty()], ignore_index=True)
    # a kind we may not list would look like "nothing there": drop the checks that need it (noted instead)
    degraded = {c for kind in snap.notes for c in NEEDS.get(kind, ())}
    evals = evals[~evals["check"].isin(degraded)]
    kept, excluded = apply_exclude(evals, o.exclude)
    found = kept[kept["severity"] != ""]
    rank = found["severity"].map(SEVERITY_RANK)
    findings = found.assign(_r=rank).sort_values(["_r", "group", "check", "object"],
                                                 ascending=[False, True, True, True]).drop(columns="_r")
    kops_left = int(((found["group"] == "kops") & (rank >= SEVERITY_RANK["high"])).sum())
    passed = kops_left == 0 and not (rank >= SEVERITY_RANK[o.fail_on]).any()
    return Validation(evaluations=kept.reset_index(drop=True), findings=findings.reset_index(drop=True),
                      excluded=excluded.reset_index(drop=True), notes=notes_frame(inputs),
                      score=score(kept), passed=bool(passed), kops_failures=len(verdict.failures), inputs=inputs,
                      at=now, kops=verdict, tolerated=tolerated)


def kops_verdict(inputs: Inputs) -> kp.KopsVerdict:
    """What ``kops validate cluster`` would answer for ``inputs`` (nodes and pods only without AWS)."""
    snap = inputs.snapshot
    if inputs.cloud is None or inputs.igs is None:
        return kp.validate_nodes_only(snap.nodes, snap.pods)
    c = inputs.cloud
    return kp.validate(inputs.igs, c.asgs, c.members, c.instances, snap.nodes, snap.pods, inputs.api_addresses)


def notes_frame(inputs: Inputs) -> pd.DataFrame:
    """Degraded checks (``check, note``): forbidden kinds and unavailable AWS/TLS sources."""
    rows = [{"check": c, "note": f"{kind}: {why}"} for kind, why in inputs.snapshot.notes.items()
            for c in NEEDS.get(kind, ())]
    rows += [{"check": c, "note": why} for c, why in inputs.notes.items()]
    return pd.DataFrame(rows, columns=["check", "note"])


# -- wait / count / interval ------------------------------------------------------------------------

@dataclass
class ValidationRun:
    """The outcome of :func:`validate_until`.

    Attributes:
        last: the last validation.
        attempts: one row per attempt: ``attempt, at, seconds, passed, score, findings, error``.
        passed: the required consecutive passes were reached.
        reason: why it passed or failed, in one sentence.
        options: the options used.
        count: consecutive passes that were required.
    """

    last: Validation | None
    attempts: pd.DataFrame
    passed: bool
    reason: str
    options: Options
    count: int = 1

    def summary_line(self) -> str:
        """``PASS score 98.7% - ...`` (one line for people and the scheduled report)."""
        s = f"{self.last.score:.1f}%" if self.last else "n/a"
        line = f"{'PASS' if self.passed else 'FAIL'} score {s}: {self.reason}"
        if self.last and self.last.kops_passed != self.passed:
            line += (f" (kops validate cluster: {'PASS' if self.last.kops_passed else 'FAIL'}, "
                     f"{self.last.kops_failures} failure(s))")
        return line

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary for ``opsbook.report.record``."""
        last = self.last
        counts = last.findings["severity"].value_counts().to_dict() if last else {}
        kops = last.kops.as_json() if last else {"failures": [], "nodes": []}
        return {
            "status": "PASS" if self.passed else "FAIL",
            "score": last.score if last else None,
            "line": self.summary_line(),
            "attempts": len(self.attempts),
            # kops validate cluster -o json's shape, so scripts written for kops can read it
            "failures": kops["failures"],
            "nodes": kops["nodes"],
            "kops": {"status": "PASS" if last and last.kops_passed else "FAIL",
                     "failures": len(kops["failures"])},
            "beyond_kops": {
                "findings": int((last.findings["group"] != "kops").sum()) if last else 0,
                "policies": {"max_unready_nodes": self.options.max_unready_nodes,
                             "exclude": list(self.options.exclude), "fail_on": self.options.fail_on},
                "tolerated_nodes": list(last.tolerated) if last else [],
            },
            "kops_failures": last.kops_failures if last else None,
            "findings": {s: int(counts.get(s, 0)) for s in SEVERITIES},
            "excluded": len(last.excluded) if last else 0,
            "degraded_checks": sorted(set(last.notes["check"])) if last else [],
            "api_requests": last.inputs.snapshot.requests if last else None,
        }

    @property
    def nodes(self) -> pd.DataFrame:
        """The last snapshot's nodes (``Snapshot.nodes``; empty if nothing was collected)."""
        return self.last.inputs.snapshot.nodes if self.last else pd.DataFrame(columns=objects.NODE_COLUMNS)

    @property
    def pods(self) -> pd.DataFrame:
        """The last snapshot's pods (``Snapshot.pods``; empty if nothing was collected)."""
        return self.last.inputs.snapshot.pods if self.last else pd.DataFrame(columns=objects.POD_COLUMNS)

    @property
    def targets(self) -> pd.DataFrame:
        """Instance-group targets used by the last validation."""
        return self.last.inputs.targets if self.last else pd.DataFrame(columns=kops_model.TARGET_COLUMNS)

    def not_counted(self) -> pd.DataFrame:
        """What the score leaves out: exclusions (per rule) and degraded checks.

        Returns:
            Columns ``kind`` (``excluded``|``degraded``), ``what`` (rule or check), ``evaluations``,
            ``findings`` (removed by the rule), ``note``.
        """
        cols = ["kind", "what", "evaluations", "findings", "note"]
        if self.last is None:
            return pd.DataFrame(columns=cols)
        ex = self.last.exclusions()
        rows = [{"kind": "excluded", "what": r.rule, "evaluations": int(r.evaluations),
                 "findings": int(r.findings), "note": "removed from the score's numerator and denominator"}
                for r in ex.itertuples(index=False)]
        rows += [{"kind": "degraded", "what": r.check, "evaluations": 0, "findings": 0, "note": r.note}
                 for r in self.last.notes.itertuples(index=False)]
        return pd.DataFrame(rows, columns=cols)

    def findings_table(self) -> pd.DataFrame:
        """The last validation's findings, most severe first."""
        cols = ["severity", "group", "check", "object", "message", "evidence"]
        return self.last.findings[cols] if self.last else pd.DataFrame(columns=cols)

    def findings_records(self) -> list[Finding]:
        """Findings for ``opsbook.report.findings`` (a failed run always has one at ``fail_on`` or above)."""
        out = []
        if self.last is not None:
            for r in self.last.findings.itertuples(index=False):
                out.append(Finding(check=r.check, severity=r.severity, message=r.message, object=r.object,
                                   group=r.group, evidence=r.evidence, data={"namespace": r.namespace}))
            for r in self.last.notes.itertuples(index=False):
                out.append(Finding(check=r.check, severity="info", message=f"check degraded: {r.note}",
                                   group=CHECKS.get(r.check, ""), data={"degraded": True}))
        if not self.passed and not any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[self.options.fail_on]
                                       for f in out):
            sev = "high" if SEVERITY_RANK[self.options.fail_on] <= SEVERITY_RANK["high"] else "critical"
            out.append(Finding(check="validate.result", severity=sev, message=self.reason, group="kops"))
        return out


def validate_until(attempt: Callable[[], Validation], *, wait_s: float = 0, count: int = 1,
                   interval_s: float = 10, options: Options | None = None,
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                   say: Callable[[str], None] | None = None) -> ValidationRun:
    """Validate like ``kops validate cluster --wait --count --interval`` (v1.33.1 ``RunValidateCluster``).

    Without ``wait_s`` one attempt decides (and ``count`` > 1 then fails, as in kops). With
    ``wait_s`` attempts repeat every ``interval_s`` until ``count`` consecutive attempts pass (a
    failure resets the streak). The deadline is only checked before an attempt and only while no
    streak is running: a streak under way when the time is up is finished, as kops does. Any
    opsbook error during an attempt (API server unreachable, AWS unreadable) counts as a failed
    attempt while waiting (kops: "will retry: unexpected error during validation").

    Args:
        attempt: collects and evaluates once (e.g. ``lambda: evaluate(collect(src), opts)``).
        wait_s: keep trying this long (seconds); 0 = one attempt.
        count: consecutive passes required (>= 1).
        interval_s: pause between attempts.
        options: recorded in the result (for ``fail_on``).
        clock: monotonic clock (injectable for tests).
        sleep: sleep function (injectable for tests).
        say: progress callback, one line per attempt.
    """
    if count < 1 or wait_s < 0 or interval_s <= 0:
        raise BadInput("count must be >= 1, wait >= 0 and interval > 0")
    say = say or (lambda m: log.info("%s", m))
    deadline = clock() + wait_s
    rows: list[dict[str, Any]] = []
    last: Validation | None = None
    streak = 0
    while True:
        if wait_s and clock() > deadline and streak == 0:
            reason = (f"wait time ({wait_s:.0f}s) exceeded after {len(rows)} attempt(s): "
                      f"{_fail_reason(last, rows[-1]['error'] if rows else '')}")
            return _run(last, rows, False, reason, options, count)
        t0 = clock()
        error = ""
        try:
            v = attempt()
            last, ok = v, v.passed
        except OpsbookError as e:
            if not wait_s or isinstance(e, BadInput):
                raise
            ok, error = False, str(e)
        streak = streak + 1 if ok else 0
        rows.append({"attempt": len(rows) + 1, "at": datetime.now(UTC), "seconds": round(clock() - t0, 3),
                     "passed": ok, "score": last.score if last and not error else None,
                     "findings": len(last.findings) if last and not error else None, "error": error[:200]})
        say(f"attempt {len(rows)}: {'pass' if ok else 'fail'}"
            f"{f' ({streak}/{count} consecutive)' if ok else ''}{f' - {error[:120]}' if error else ''}")
        if streak >= count:
            reason = (f"passed {streak} consecutive validation(s) in {len(rows)} attempt(s)" if count > 1
                      else f"cluster is valid ({len(rows)} attempt(s))")
            return _run(last, rows, True, reason, options, count)
        if not wait_s:
            if ok:
                reason = (f"passed {streak} consecutive time(s) but not {count}: "
                          "set wait > 0 to keep validating")
            else:
                reason = _fail_reason(last, error)
            return _run(last, rows, False, reason, options, count)
        sleep(interval_s)


def _fail_reason(v: Validation | None, error: str = "") -> str:
    if v is None or error:
        return f"the last attempt failed ({error[:200]})"
    if v.kops_failures:
        kinds = ", ".join(f"{t}/{n}" for t, n in v.kops.keys()[:5])
        more = f" and {v.kops_failures - 5} more" if v.kops_failures > 5 else ""
        checks = sorted(set(v.findings.loc[v.findings["group"] == "kops", "check"]))
        return f"{v.kops_failures} kops validation failure(s): {kinds}{more} ({', '.join(checks)})"
    return f"findings at or above the fail_on severity ({len(v.findings)} findings)"


def _run(last: Validation | None, rows: list[dict[str, Any]], passed: bool, reason: str,
         options: Options | None, count: int) -> ValidationRun:
    return ValidationRun(last=last, attempts=pd.DataFrame(rows), passed=passed, reason=reason,
                         options=options or Options(), count=count)
