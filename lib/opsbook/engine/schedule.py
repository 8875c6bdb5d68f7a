"""Scheduled reports on the cluster itself: a CronJob that runs ``opsbook run``.

``render`` returns the manifests (ServiceAccount, read-only ClusterRole binding,
ConfigMap with the parameters, CronJob with concurrencyPolicy Forbid and history
limits); ``apply`` creates or updates them through the API server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import utils as k8s_utils

from opsbook import __version__
from opsbook.errors import BadInput
from opsbook.k8s.client import api_client, boundary

NAMESPACE = "opsbook"
SERVICE_ACCOUNT = "opsbook-runner"
CLUSTER_ROLE = "opsbook-readonly"
DEFAULT_IMAGE = f"opsbook-runner:{__version__}"
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def validate_cron(expr: str) -> str:
    """Check a five-field cron expression (or @hourly/@daily ...)."""
    if expr.startswith("@") and expr in ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@midnight"):
        return expr
    fields = expr.split()
    if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
        raise BadInput(
            f"--cron {expr!r} is not a five-field cron expression such as '*/10 * * * *' "
            "(minute hour day-of-month month day-of-week)."
        )
    return expr


def render(
    runbook: str,
    cron: str,
    parameters: dict[str, Any],
    output: str,
    image: str = DEFAULT_IMAGE,
    fail_on: str = "high",
    timeout_s: int = 1800,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """Manifests that run ``opsbook run RUNBOOK`` on a schedule.

    Args:
        runbook: runbook name (already checked).
        cron: schedule.
        parameters: checked parameters, stored in a ConfigMap as params.yaml.
        output: where reports go (``s3://`` recommended in-cluster).
        image: runner image built from deploy/Dockerfile.
        fail_on: severity that fails the Job.
        timeout_s: activeDeadlineSeconds of each Job.
        namespace: namespace for the CronJob.

    Returns:
        Kubernetes objects as dicts.
    """
    validate_cron(cron)
    name = f"opsbook-{runbook}"[:52]
    labels = {
        "app.kubernetes.io/name": "opsbook",
        "app.kubernetes.io/component": "scheduled-runbook",
        "opsbook.io/runbook": runbook,
    }
    params_yaml = yaml.safe_dump(parameters, sort_keys=True)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{SERVICE_ACCOUNT}-{namespace}", "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-params", "namespace": namespace, "labels": labels},
            "data": {"params.yaml": params_yaml},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "schedule": cron,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 5,
                "jobTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "backoffLimit": 0,
                        "activeDeadlineSeconds": timeout_s,
                        "ttlSecondsAfterFinished": 86400,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "serviceAccountName": SERVICE_ACCOUNT,
                                "restartPolicy": "Never",
                                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                                "containers": [
                                    {
                                        "name": "opsbook",
                                        "image": image,
                                        "args": [
                                            "run",
                                            runbook,
                                            "-f",
                                            "/etc/opsbook/params.yaml",
                                            "--output",
                                            output,
                                            "--fail-on",
                                            fail_on,
                                            "--timeout",
                                            str(timeout_s),
                                        ],
                                        "resources": {
                                            "requests": {"cpu": "100m", "memory": "256Mi"},
                                            "limits": {"memory": "1Gi"},
                                        },
                                        "volumeMounts": [
                                            {"name": "params", "mountPath": "/etc/opsbook", "readOnly": True}
                                        ],
                                        "securityContext": {
                                            "allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": False,
                                        },
                                    }
                                ],
                                "volumes": [{"name": "params", "configMap": {"name": f"{name}-params"}}],
                            },
                        },
                    },
                },
            },
        },
    ]


def to_yaml(objs: list[dict[str, Any]]) -> str:
    """Multi-document YAML."""
    return yaml.safe_dump_all(objs, sort_keys=False)


def readonly_role_manifests() -> list[dict[str, Any]]:
    """The shipped read-only ClusterRole (deploy/rbac-readonly.yaml), if present."""
    path = Path(__file__).resolve().parents[3] / "deploy" / "rbac-readonly.yaml"
    if not path.exists():
        return []
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "ClusterRole"]


def apply(objs: list[dict[str, Any]], api: k8s.ApiClient | None = None) -> list[str]:
    """Create or replace the objects on the cluster; return ``kind/name`` of each."""
    api = api or api_client()
    done = []
    with boundary("applying the schedule", api):
        for obj in objs:
            kind, name = obj["kind"], obj["metadata"]["name"]
            try:
                k8s_utils.create_from_dict(api, obj)
            except k8s_utils.FailToCreateError as e:
                if not all(getattr(x, "status", None) == 409 for x in e.api_exceptions):
                    raise e.api_exceptions[0] from e
                _replace(api, obj)
            done.append(f"{kind}/{name}")
    return done


def _replace(api: k8s.ApiClient, obj: dict[str, Any]) -> None:
    kind, meta = obj["kind"], obj["metadata"]
    ns = meta.get("namespace")
    if kind == "CronJob":
        k8s.BatchV1Api(api).patch_namespaced_cron_job(meta["name"], ns, obj)
    elif kind == "ConfigMap":
        k8s.CoreV1Api(api).patch_namespaced_config_map(meta["name"], ns, obj)
    elif kind == "ClusterRole":
        k8s.RbacAuthorizationV1Api(api).patch_cluster_role(meta["name"], obj)
    # Namespace, ServiceAccount, ClusterRoleBinding: already there is fine
