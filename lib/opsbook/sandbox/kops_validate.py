"""Run the real ``kops validate cluster`` against the sandbox (the differential tests' oracle).

kops v1.33.1 ignores your kubeconfig: it reads the cluster and its instance groups
from the state store, mints an admin client certificate from the state store's
``kubernetes-ca`` keypair, and verifies the API server as ``api.internal.<cluster>``.
So :func:`publish` writes, under ``s3://opsbook-kops-state/kops-validate`` in moto
(a prefix nobody else reads):

* ``<cluster>/config``: a minimal kops Cluster (gossip name, AWS, the sandbox's zones);
* ``<cluster>/instancegroup/<ig>``: one InstanceGroup per sandbox instance group;
* the sandbox's CA (kwokctl's ``pki/ca.crt`` and ``ca.key``) imported with
  ``kops create keypair kubernetes-ca --primary``.

The sandbox's API server certificate carries ``api.<cluster>`` and
``api.internal.<cluster>`` (added when the sandbox is created), so
``kops validate cluster --api-server https://127.0.0.1:<port> -o json`` connects.

One sandbox shortcut: kops names a control-plane group's ASG ``<ig>.masters.<cluster>``,
the sandbox's seed names every ASG ``<ig>.<cluster>``. A stored group is given the
role ``ControlPlane`` only when its ASG has the kops name; otherwise ``Node``, so kops
matches it (it validates the same members and nodes; only the role it prints differs).
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from opsbook.aws.session import client as aws_client
from opsbook.errors import SandboxError
from opsbook.kops.spec import ClusterSpec
from opsbook.sandbox.sandbox import Sandbox, _spec_from_dict, api_names
from opsbook.sandbox.seed import STATE_BUCKET

log = logging.getLogger(__name__)

PREFIX = "kops-validate"
STATE_STORE = f"s3://{STATE_BUCKET}/{PREFIX}"
KOPS_K8S_VERSION = "1.33.1"


@dataclass
class KopsRun:
    """One ``kops validate cluster -o json`` run.

    Attributes:
        exit_code: kops' exit code (0 valid; 1 "validation failed: cluster not yet healthy"; 2 is
            reserved by kops for a result with failures that returned no error, which v1.33.1 never does).
        failures: kops' ``failures`` (``type, name, message, instanceGroup``).
        nodes: kops' ``nodes`` (``name, zone, role, hostname, status``).
        stderr: kops' log lines (the last error says why it failed).
        seconds: wall time.
        command: what was run.
    """

    exit_code: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""
    seconds: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Kops said the cluster is valid."""
        return self.exit_code == 0

    def keys(self) -> list[tuple[str, str]]:
        """The sorted ``(type, name)`` list of the failures."""
        return sorted((str(f.get("type", "")), str(f.get("name", ""))) for f in self.failures)


def _s3_key(path: str) -> str:
    return f"{PREFIX}/{path}"


def cluster_document(spec: ClusterSpec) -> dict[str, Any]:
    """The kops Cluster object stored as ``<cluster>/config`` (what validate reads of it)."""
    subnets = [{"name": z, "zone": z, "type": "Private", "cidr": f"172.10.{32 * i}.0/19"}
               for i, z in enumerate(spec.zones)]
    return {
        "apiVersion": "kops.k8s.io/v1alpha2",
        "kind": "Cluster",
        "metadata": {"name": spec.name},
        "spec": {
            "cloudProvider": "aws",
            "configBase": f"{STATE_STORE}/{spec.name}",
            "kubernetesVersion": KOPS_K8S_VERSION,
            "networkCIDR": spec.network_cidr,
            "networking": {"kopeio": {}},
            "nonMasqueradeCIDR": "100.64.0.0/10",
            "topology": {"dns": {"type": "Private"}},
            "api": {"loadBalancer": {"type": "Public"}},
            "subnets": subnets,
            "etcdClusters": [{"name": n, "etcdMembers": [{"name": z.rsplit("-", 1)[-1], "instanceGroup": f"master-{z}"}
                                                          for z in spec.master_zones]} for n in ("main", "events")],
        },
    }


def instance_group_document(name: str, role: str, machine_type: str, zone: str, min_size: int,
                            max_size: int) -> dict[str, Any]:
    """A kops InstanceGroup object as stored under ``<cluster>/instancegroup/<name>``."""
    return {
        "apiVersion": "kops.k8s.io/v1alpha2",
        "kind": "InstanceGroup",
        "metadata": {"name": name, "labels": {}},
        "spec": {"role": role, "machineType": machine_type, "minSize": min_size, "maxSize": max_size,
                 "subnets": [zone], "image": "ami-12c6146b"},
    }


def put_instance_group(spec: ClusterSpec, doc: dict[str, Any]) -> None:
    """Store (or replace) one instance group in the kops-validate state store."""
    s3 = aws_client("s3", spec.region)
    s3.put_object(Bucket=STATE_BUCKET, Key=_s3_key(f"{spec.name}/instancegroup/{doc['metadata']['name']}"),
                  Body=yaml.safe_dump(doc).encode())


def delete_instance_group(spec: ClusterSpec, name: str) -> None:
    """Remove one instance group from the kops-validate state store."""
    aws_client("s3", spec.region).delete_object(Bucket=STATE_BUCKET,
                                                Key=_s3_key(f"{spec.name}/instancegroup/{name}"))


def sandbox_spec(sb: Sandbox) -> ClusterSpec:
    """The cluster spec the sandbox was seeded with.

    Raises:
        SandboxError: the sandbox is not up.
    """
    st = sb.state()
    if st is None:
        raise SandboxError(f"sandbox {sb.name!r} is not up: run `opsbook sandbox up --name {sb.name}`")
    return ClusterSpec(**_spec_from_dict(st.spec))


def publish(sb: Sandbox, kops: Path) -> str:
    """Write the sandbox's cluster, instance groups and CA to the state store; return its URL.

    Raises:
        SandboxError: the sandbox is not up, has no kwokctl CA, or kops refused the keypair.
    """
    spec = sandbox_spec(sb)
    env = sb.activate()
    s3 = aws_client("s3", spec.region)
    asgs = {g["AutoScalingGroupName"] for g in aws_client("autoscaling", spec.region)
            .describe_auto_scaling_groups()["AutoScalingGroups"]}
    s3.put_object(Bucket=STATE_BUCKET, Key=_s3_key(f"{spec.name}/config"),
                  Body=yaml.safe_dump(cluster_document(spec)).encode())
    for ig in spec.instance_groups():
        role = "Node"
        if ig.is_control_plane and f"{ig.name}.masters.{spec.name}" in asgs:
            role = "ControlPlane"
        put_instance_group(spec, instance_group_document(ig.name, role, ig.machine_type, ig.zone, ig.min_size,
                                                         ig.max_size))
    listed = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix=_s3_key(f"{spec.name}/pki/private/kubernetes-ca/"))
    if not listed.get("KeyCount"):
        pki = sb.kwok_workdir / "clusters" / sb.name / "pki"
        if not (pki / "ca.crt").exists():
            raise SandboxError(f"no kwokctl CA in {pki}: only a kwok sandbox can run real kops validate")
        proc = subprocess.run([str(kops), "create", "keypair", "kubernetes-ca", "--cert", str(pki / "ca.crt"),
                               "--key", str(pki / "ca.key"), "--primary", "--name", spec.name,
                               "--state", STATE_STORE], env=_kops_env(env), capture_output=True, text=True,
                              timeout=120, check=False)
        if proc.returncode != 0:
            raise SandboxError(f"kops create keypair kubernetes-ca failed: {proc.stderr.strip()[-1500:]}")
    return STATE_STORE


def _kops_env(env: dict[str, str]) -> dict[str, str]:
    import os

    out = {**os.environ, **env}
    out["KOPS_STATE_STORE"] = STATE_STORE
    out["KUBECONFIG"] = str(Path(tempfile.gettempdir()) / "opsbook-kops-validate-kubeconfig")  # never the sandbox's
    return out


def api_server(sb: Sandbox) -> str:
    """``https://127.0.0.1:<port>`` of the sandbox's kube-apiserver (from its kubeconfig)."""
    st = sb.state()
    if st is None:
        raise SandboxError(f"sandbox {sb.name!r} is not up")
    cfg = yaml.safe_load(Path(st.kubeconfig).read_text())
    server = str(cfg["clusters"][0]["cluster"]["server"])
    return f"https://127.0.0.1:{urlparse(server).port}"


def run(sb: Sandbox, kops: Path, timeout: float = 120) -> KopsRun:
    """``kops validate cluster --name <cluster> --api-server https://127.0.0.1:<port> -o json`` once.

    Call :func:`publish` first (once per sandbox; again after the spec changes).
    """
    st = sb.state()
    if st is None:
        raise SandboxError(f"sandbox {sb.name!r} is not up")
    env = _kops_env(sb.activate())
    cmd = [str(kops), "validate", "cluster", "--name", st.cluster_name, "--state", STATE_STORE,
           "--api-server", api_server(sb), "-o", "json"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    out = KopsRun(exit_code=proc.returncode, stderr=proc.stderr, seconds=round(time.monotonic() - t0, 2),
                  command=cmd)
    text = proc.stdout.strip()
    if text:
        body, _ = json.JSONDecoder().raw_decode(text)
        out.failures = list(body.get("failures") or [])
        out.nodes = list(body.get("nodes") or [])
    elif proc.returncode != 0:
        if "x509" in proc.stderr or "certificate is valid for" in proc.stderr:
            raise SandboxError(f"kops cannot verify the sandbox's API server as {api_names(st.cluster_name)[1]}: the "
                               "sandbox was created without those certificate names; recreate it "
                               f"(`opsbook sandbox down --name {sb.name}` then `up`). kops said: "
                               f"{proc.stderr.strip()[-600:]}")
        raise SandboxError(f"kops validate printed no result (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return out


__all__ = ["STATE_STORE", "KopsRun", "api_names", "delete_instance_group", "instance_group_document", "publish",
           "put_instance_group", "run", "sandbox_spec"]
