"""Every check's id and group, what each needs from the snapshot, the evaluation columns."""

from __future__ import annotations

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
