"""The local sandbox: a real Kubernetes control plane plus a real moto server.

``Sandbox(name).up()`` starts a moto server and a cluster, seeds both from a
:class:`~opsbook.kops.spec.ClusterSpec` so they agree, and writes an env file
(``AWS_ENDPOINT_URL``, fake credentials, region, ``KUBECONFIG``, kops'
``S3_*`` variables) that notebooks, papermill and a person's shell can source.

Cluster backends, in order: an explicit kubeconfig (no local cluster is
started), kind when a Docker engine and ``kind`` are present, else ``kwokctl
--runtime binary`` with the binaries from :mod:`opsbook.sandbox.toolchain`.
"""

from opsbook.sandbox.sandbox import (
    DEFAULT_NAME,
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    Progress,
    Sandbox,
    SandboxState,
    active_env,
    api_names,
    env_file,
    state_dir,
)

__all__ = [
    "DEFAULT_NAME",
    "FAKE_ACCESS_KEY",
    "FAKE_SECRET_KEY",
    "Progress",
    "Sandbox",
    "SandboxState",
    "active_env",
    "api_names",
    "env_file",
    "state_dir",
]
