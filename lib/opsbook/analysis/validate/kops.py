"""Group ``kops``: kops validate's failures as evaluations, and the ``max_unready_nodes`` policy."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis import kops_parity as kp
from opsbook.analysis.validate.catalog import EVAL_COLUMNS
from opsbook.report import object_id


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
            obj = object_id("Pod", f.name)
        elif check == "kops.dns.apiserver":
            obj = "dns/apiserver"
        else:
            obj = object_id("Node", f.name)
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
    passed += [("kops.node.ready", object_id("Node", n), "") for n in verdict.nodes["name"]]
    ready_cp = nodes[nodes["name"].isin(verdict.nodes["name"]) & nodes["control_plane_label"].astype(bool)]
    passed += [("kops.controlplane.components", object_id("Node", n), "") for n in ready_cp["name"]]
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
