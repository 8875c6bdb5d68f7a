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

__all__ = ["ApiError", "Forbidden", "Gone", "api_client", "boundary", "continue_kwargs", "continue_query", "list_all",
           "pages", "server_of"]

T = TypeVar("T")
P = TypeVar("P")


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


def _json_continue(page: Any) -> str | None:
    return (page.get("metadata") or {}).get("continue") or None


def pages(fetch: Callable[[str | None], P], next_token: Callable[[P], str | None] = _json_continue) -> Iterator[P]:
    """The one pager of Kubernetes list calls: ``fetch(token)`` page after page until ``continue`` is empty.

    Args:
        fetch: gets one page given the previous page's continue token (None for the first page).
        next_token: the continue token of a page (default: raw JSON's ``metadata.continue``).
    """
    token: str | None = None
    while True:
        page = fetch(token)
        yield page
        token = next_token(page)
        if not token:
            return


def continue_kwargs(token: str | None, limit: int = 500, **kwargs: Any) -> dict[str, Any]:
    """Keyword arguments of a generated ``list_*`` call for one page (``limit``, ``_continue``)."""
    return {"limit": limit, **({"_continue": token} if token else {}), **kwargs}


def continue_query(token: str | None, limit: int = 500) -> list[tuple[str, Any]]:
    """Query parameters of a raw list GET for one page (``limit``, ``continue``)."""
    return [("limit", limit)] + ([("continue", token)] if token else [])


def list_all(fn: Callable[..., Any], *args: Any, limit: int = 500, **kwargs: Any) -> list[Any]:
    """Call a paginated ``list_*`` method until ``continue`` is empty and return all items (model objects)."""
    return [item for page in pages(lambda t: fn(*args, **continue_kwargs(t, limit, **kwargs)),
                                   lambda p: p.metadata._continue) for item in page.items]
