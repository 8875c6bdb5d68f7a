"""Build Kubernetes API clients; convert ApiException once, at the boundary.

Clients are never built at import time. Every opsbook function that talks to the
cluster takes ``api: ApiClient | None``; ``None`` means "the configured cluster":
``$KUBECONFIG`` (or ``~/.kube/config``), else the in-cluster service account.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from opsbook.errors import ApiError, ClusterUnreachable, Forbidden, Gone

__all__ = ["ApiError", "Forbidden", "Gone", "api_client", "boundary", "list_all", "server_of"]

T = TypeVar("T")


def api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient for ``kubeconfig`` (default ``$KUBECONFIG``), else the in-cluster config.

    Raises:
        ClusterUnreachable: no usable configuration was found.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG")
    cfg = client.Configuration()
    try:
        if path or os.path.exists(os.path.expanduser("~/.kube/config")):
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
        else:
            config.load_incluster_config(client_configuration=cfg)
    except (ConfigException, OSError, TypeError) as e:
        raise ClusterUnreachable(
            f"no usable Kubernetes configuration ({path or '~/.kube/config'}): {e}. Start the sandbox "
            "(`opsbook sandbox up`, then `source $(opsbook sandbox env --path)`) or set KUBECONFIG to "
            "your cluster's kubeconfig (`kops export kubecfg --admin`)."
        ) from e
    cfg.retries = 1
    return client.ApiClient(cfg)


def server_of(api: client.ApiClient) -> str:
    """The API server URL an ApiClient talks to."""
    return str(api.configuration.host)


@contextmanager
def boundary(what: str, api: client.ApiClient | None = None) -> Iterator[None]:
    """Convert kubernetes/urllib3 errors raised inside the block into opsbook errors."""
    try:
        yield
    except ApiException as e:
        if e.status == 403:
            raise Forbidden(
                f"{what}: forbidden for this identity. Grant the read-only ClusterRole in "
                "deploy/rbac-readonly.yaml, or run with a kubeconfig that may read this."
            ) from e
        msg = f"{what}: the API server answered {e.status} {e.reason}: {e.body!s:.300}"
        if e.status == 410:
            raise Gone(msg) from e
        raise ApiError(msg, int(e.status or 0)) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        where = server_of(api) if api else "the API server"
        raise ClusterUnreachable(
            f"{what}: cannot reach {where} ({e.__class__.__name__}: {e!s:.200}). Check the cluster is up "
            "(`opsbook sandbox status`, or your VPN/bastion for a real cluster) and that KUBECONFIG points at it."
        ) from e


def list_all(fn: Callable[..., Any], *args: Any, limit: int = 500, **kwargs: Any) -> list[Any]:
    """Call a paginated ``list_*`` method until ``continue`` is empty and return all items."""
    items: list[Any] = []
    token: str | None = None
    while True:
        page = (
            fn(*args, limit=limit, _continue=token, **kwargs) if token else fn(*args, limit=limit, **kwargs)
        )
        items.extend(page.items)
        token = page.metadata._continue
        if not token:
            return items
