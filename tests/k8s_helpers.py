"""Small helpers shared by the sandbox tests: poll until true, a plain Deployment, running pods."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return it), or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def deployment(name: str, replicas: int, node_selector: dict[str, str] | None = None) -> k8s.V1Deployment:
    """A Deployment of ``replicas`` pods labelled ``app=<name>``."""
    labels = {"app": name}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(
                    node_selector=node_selector,
                    containers=[k8s.V1Container(name="app", image="example/app:1.0")],
                ),
            ),
        ),
    )


def running_pods(core: k8s.CoreV1Api, ns: str, app: str) -> list[k8s.V1Pod]:
    """Pods of ``app=<app>`` that are Running and not being deleted."""
    pods = core.list_namespaced_pod(ns, label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
