"""Which cluster a run looked at: cluster name, kube context, API server URL, AWS account.

Every report's JSON and the index carry this record, so runs against ``devtest``
and ``prod`` sit side by side in one index and alerts compare a run only with the
previous run on the *same* cluster. Nothing here fails a run: a value that
cannot be found is left empty and ``notes`` says why.

``--context NAME`` is honoured for every consumer (the kubernetes client, kubectl,
kops) by writing a private copy of the kubeconfig whose current-context is NAME
and pointing ``KUBECONFIG`` at it for the run.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opsbook.errors import BadInput

ENV_DEFAULTS = {"cluster_name": "KOPS_CLUSTER_NAME", "region": "AWS_REGION", "state_store": "KOPS_STATE_STORE"}


@dataclass
class ClusterIdentity:
    """The cluster a run talked to."""

    cluster_name: str = ""
    context: str = ""
    api_server: str = ""
    aws_account: str = ""
    notes: list[str] = field(default_factory=list)

    def key(self) -> str:
        """What "the same cluster" means for history and alerts."""
        return self.cluster_name or self.context or self.api_server

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def env_defaults(declared: set[str], given: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Values for declared-but-not-given ``cluster_name``/``region``/``state_store`` from the environment."""
    return {
        name: env[var] for name, var in ENV_DEFAULTS.items() if name in declared and name not in given and env.get(var)
    }


def _kubeconfig_files(env: Mapping[str, str]) -> list[Path]:
    raw = env.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def load_kubeconfig(env: Mapping[str, str]) -> dict[str, Any]:
    """The merged kubeconfig (first file wins per name, as kubectl merges)."""
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": [], "current-context": ""}
    seen: dict[str, set[str]] = {"clusters": set(), "contexts": set(), "users": set()}
    for path in _kubeconfig_files(env):
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not merged["current-context"]:
            merged["current-context"] = doc.get("current-context") or ""
        for section in ("clusters", "contexts", "users"):
            for item in doc.get(section) or []:
                if item.get("name") not in seen[section]:
                    seen[section].add(item.get("name"))
                    merged[section].append(item)
        for k, v in doc.items():
            merged.setdefault(k, v)
    return merged


def check_context(context: str, env: Mapping[str, str]) -> None:
    """Raise BadInput unless the kubeconfig has ``context``."""
    kubeconfig_for_context(context, env).unlink()


def kubeconfig_for_context(context: str, env: Mapping[str, str]) -> Path:
    """A private (0600) copy of the kubeconfig with ``context`` as its current context.

    Raises:
        BadInput: no such context (the known ones are listed).
    """
    cfg = load_kubeconfig(env)
    names = [c.get("name") for c in cfg["contexts"]]
    if context not in names:
        known = ", ".join(str(n) for n in names) or "none"
        raise BadInput(f"--context {context!r}: no such context in the kubeconfig. Known contexts: {known}")
    cfg["current-context"] = context
    fd, tmp = tempfile.mkstemp(prefix="opsbook-kubeconfig-", suffix=".yaml")
    os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return Path(tmp)


def kube_identity(env: Mapping[str, str]) -> tuple[str, str]:
    """(context, API server URL) from the kubeconfig, else the in-cluster service account."""
    cfg = load_kubeconfig(env)
    ctx_name = cfg.get("current-context") or ""
    ctx = next((c.get("context") or {} for c in cfg["contexts"] if c.get("name") == ctx_name), None)
    if ctx is not None:
        cluster = next((c.get("cluster") or {} for c in cfg["clusters"] if c.get("name") == ctx.get("cluster")), {})
        return ctx_name, str(cluster.get("server", ""))
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if host:
        return "in-cluster", f"https://{host}:{port}"
    return "", ""


def aws_account(timeout_s: float = 3.0) -> tuple[str, str]:
    """(account id, note) from STS GetCallerIdentity; empty with a note when it cannot be had."""
    import boto3
    from botocore.config import Config

    try:
        sts = boto3.client(
            "sts",
            config=Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}),
        )
        return str(sts.get_caller_identity()["Account"]), ""
    except Exception as e:  # no credentials, no network: the identity is still useful without it
        return "", f"AWS account unknown ({e.__class__.__name__})"


def cluster_identity(parameters: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ClusterIdentity:
    """The identity of the cluster a run with ``parameters`` looks at, from the current environment.

    ``env`` defaults to ``os.environ``; the AWS account is looked up through boto3's
    usual configuration (``AWS_ENDPOINT_URL`` included), so call this with the run's
    environment in place.
    """
    env = os.environ if env is None else env
    ident = ClusterIdentity()
    ident.cluster_name = str(parameters.get("cluster_name") or parameters.get("cluster") or "")
    ident.cluster_name = ident.cluster_name or env.get("KOPS_CLUSTER_NAME", "")
    ident.context, ident.api_server = kube_identity(env)
    if not ident.api_server:
        ident.notes.append("no kubeconfig and not in a cluster")
    ident.aws_account, note = aws_account()
    if note:
        ident.notes.append(note)
    return ident
