r"""The create-cluster runbook's parameters, checked before anything is called.

:func:`validate` turns the notebook's parameters into a :class:`CreateParams`
or raises :class:`~opsbook.errors.BadInput` with one paragraph that lists every
problem and how to fix it. All checks are local (name, zones, CIDR, counts,
networking, SSH key, state-store URL) except the last one, which asks EC2
whether the instance types exist; nothing is created either way.

The team's original command, kept for reference and for the deprecated-flag
advice::

    kops create cluster --cloud aws --name $CLUSTER_NAME --zones eu-central-1a,eu-central-1b,eu-central-1c \\
      --node-size t2.medium --node-count 5 --master-zones eu-central-1a --master-size m3.medium \\
      --network-cidr 172.10.0.0/16 --topology private --networking kopeio-vxlan --bastion \\
      --ssh-public-key ssh/devtest.pub
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from opsbook.aws.s3url import is_s3, parse_s3
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import AwsError, BadInput
from opsbook.kops.spec import ClusterSpec

log = logging.getLogger(__name__)

ORIGINAL_COMMAND = (
    "kops create cluster --cloud aws --name $CLUSTER_NAME --zones eu-central-1a,eu-central-1b,eu-central-1c "
    "--node-size t2.medium --node-count 5 --master-zones eu-central-1a --master-size m3.medium "
    "--network-cidr 172.10.0.0/16 --topology private --networking kopeio-vxlan --bastion "
    "--ssh-public-key ssh/devtest.pub"
)

# `kops create cluster --networking` values of kops 1.30-1.34 (cloudup.setupNetworking), with aliases.
NETWORKING = {
    "kubenet": "kubenet", "external": "external", "cni": "cni",
    "kopeio-vxlan": "kopeio", "kopeio": "kopeio",
    "flannel": "flannel", "flannel-vxlan": "flannel", "flannel-udp": "flannel-udp",
    "calico": "calico", "canal": "canal", "kube-router": "kube-router",
    "amazonvpc": "amazonvpc", "amazon-vpc-routed-eni": "amazonvpc",
    "cilium": "cilium", "cilium-etcd": "cilium-etcd", "cilium-eni": "cilium-eni", "kindnet": "kindnet",
}
TOPOLOGIES = ("public", "private")
CLOUDS = ("aws",)
PROVIDERS = ("kops", "sandbox")
CPU_CREDITS = ("", "default", "standard", "unlimited")  # "default" = AWS's default for the family
GOSSIP_SUFFIX = ".k8s.local"

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_K8S_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
_KOPS_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
# RFC 1918 and RFC 6598 (carrier-grade NAT, which AWS also accepts for VPCs).
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                            "100.64.0.0/10"))


@dataclass(frozen=True)
class CreateParams:
    """Checked parameters of ``kops create cluster`` plus the runbook's own.

    Attributes:
        cluster_name: DNS name of the cluster; ``*.k8s.local`` is a gossip cluster (no Route53).
        region: AWS region, e.g. ``eu-central-1``.
        zones: availability zones for the nodes (one subnet each).
        node_size: EC2 instance type of the nodes.
        node_count: total number of nodes, spread over ``zones`` as kops does.
        control_plane_zones: zones of the control-plane nodes (odd count; one node each).
        control_plane_size: EC2 instance type of the control-plane nodes.
        network_cidr: the VPC CIDR.
        topology: ``public`` or ``private``.
        networking: canonical kops networking name (``kopeio`` for ``kopeio-vxlan``).
        bastion: whether kops creates a bastion instance group.
        ssh_public_key: path of the SSH public key, or ``""`` for none.
        state_store: ``s3://bucket[/prefix]`` of the kops state store.
        kubernetes_version: e.g. ``1.33.1`` (no leading v).
        kops_version: e.g. ``v1.33.1``.
        cloud: ``aws``.
        node_cpu_credits: ``""`` (AWS default for the family), ``standard`` or ``unlimited``.
        provider: ``kops`` (AWS) or ``sandbox`` (the local cluster).
        notes: non-fatal remarks made while checking (shown with the preflight advice).
    """

    cluster_name: str
    region: str
    zones: tuple[str, ...]
    node_size: str
    node_count: int
    control_plane_zones: tuple[str, ...]
    control_plane_size: str
    network_cidr: str
    topology: str
    networking: str
    bastion: bool
    ssh_public_key: str
    state_store: str
    kubernetes_version: str
    kops_version: str
    cloud: str = "aws"
    node_cpu_credits: str = ""
    provider: str = "kops"
    notes: tuple[str, ...] = ()

    @property
    def gossip(self) -> bool:
        """Whether the name is a gossip name (``.k8s.local``), which needs no Route53 zone."""
        return self.cluster_name.endswith(GOSSIP_SUFFIX)

    @property
    def state_bucket(self) -> str:
        """The bucket part of ``state_store``."""
        return (parse_s3(self.state_store) or ("", ""))[0]

    @property
    def instance_types(self) -> tuple[str, ...]:
        """Distinct instance types the cluster uses (nodes first)."""
        return tuple(dict.fromkeys((self.node_size, self.control_plane_size)))

    def spec(self) -> ClusterSpec:
        """The :class:`ClusterSpec` (instance groups, sizes, zones) these parameters describe."""
        return ClusterSpec(
            name=self.cluster_name, region=self.region, zones=self.zones, node_size=self.node_size,
            node_count=self.node_count, master_zones=self.control_plane_zones,
            master_size=self.control_plane_size, network_cidr=self.network_cidr, topology=self.topology,
            networking=self.networking, bastion=self.bastion, kubernetes_version=self.kubernetes_version,
            node_cpu_credits=self.node_cpu_credits or None,
        )


def split_list(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"a, b"`` or ``["a", "b"]`` to ``("a", "b")`` (blanks dropped, order kept)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for s in items if s and s.strip())


def cluster_name_problem(name: str) -> str | None:
    """Why ``name`` is not a usable kops cluster name, or None."""
    if not name:
        return ("cluster_name is empty: give a DNS name such as k8s.example.com, or a gossip name such as "
                "dev.k8s.local")
    if name != name.lower():
        return f"cluster_name {name!r} has capitals: kops needs a lower-case DNS name"
    if len(name) > 253:
        return f"cluster_name is {len(name)} characters long: a DNS name has at most 253"
    labels = name.split(".")
    if len(labels) < 2:
        return (f"cluster_name {name!r} is not fully qualified: use a name in your Route53 zone "
                f"(k8s.example.com) or a gossip name ({name}.k8s.local)")
    bad = [lb for lb in labels if not _LABEL.match(lb)]
    if bad:
        return (f"cluster_name {name!r} is not a valid DNS name (label {bad[0]!r}): use letters, digits "
                "and hyphens, 1-63 characters per label, no leading or trailing hyphen")
    return None


def zone_problems(region: str, zones: Sequence[str], what: str = "zones") -> list[str]:
    """Problems with ``zones`` for ``region`` (each must be ``<region><letter>`` or a local zone)."""
    if not zones:
        return [f"{what} is empty: give at least one zone of {region}, e.g. {region}a"]
    pattern = re.compile(rf"^{re.escape(region)}(-[a-z]+-\d+)?[a-z]$")
    out = []
    wrong = [z for z in zones if not pattern.match(z)]
    if wrong:
        out.append(f"{what} {', '.join(wrong)} not in region {region} (expected names like {region}a)")
    dups = sorted({z for z in zones if list(zones).count(z) > 1})
    if dups:
        out.append(f"{what} lists {', '.join(dups)} more than once")
    return out


def cidr_problem(cidr: str, provider: str = "kops") -> tuple[str | None, str | None]:
    """Check a VPC CIDR. Returns ``(problem, note)``; a problem is fatal, a note is advice.

    A VPC block must be a well-formed network between /16 and /28 (AWS limits) in
    private address space (RFC 1918, or RFC 6598's 100.64.0.0/10). Public space is
    fatal for AWS (hosts that really own those addresses become unreachable from
    the cluster) and only a note for the sandbox, which routes nothing.
    """
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as e:
        return f"network_cidr {cidr!r} is not a well-formed network ({e}); e.g. 172.20.0.0/16", None
    if net.version != 4:
        return f"network_cidr {cidr} is IPv6: kops takes an IPv4 VPC CIDR here (add IPv6 with --ipv6)", None
    if not 16 <= net.prefixlen <= 28:
        return (f"network_cidr {cidr} is a /{net.prefixlen}: an AWS VPC block must be between /16 and /28 "
                "(a /16 leaves room for every zone's subnets)"), None
    if not any(net.subnet_of(p) for p in PRIVATE_RANGES):  # type: ignore[arg-type]
        msg = (f"network_cidr {cidr} is public address space, not private (RFC 1918: 10.0.0.0/8, "
               "172.16.0.0/12, 192.168.0.0/16): hosts on the internet that own those addresses would be "
               "unreachable from the cluster. Use e.g. 172.20.0.0/16")
        if provider == "sandbox":
            return None, msg + " (accepted for the sandbox, which routes nothing)"
        return msg, None
    return None, None


def ssh_key_problem(path: str) -> str | None:
    """Why the SSH public key at ``path`` is unusable, or None (``""`` means no key)."""
    if not path:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        return (f"ssh_public_key {path} does not exist (looked in {p.resolve()}): give the path of an "
                f"OpenSSH public key, e.g. create one with `ssh-keygen -t ed25519 -f {p.with_suffix('')}`")
    try:
        data = p.read_bytes()
    except OSError as e:
        return f"ssh_public_key {path} is not readable ({e.strerror}): fix its permissions"
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    if b"PRIVATE KEY" in data:
        return f"ssh_public_key {path} is a PRIVATE key: give the .pub file, never the private key"
    try:
        key = load_ssh_public_key(data.strip())
    except (ValueError, TypeError) as e:
        return (f"ssh_public_key {path} is not an OpenSSH public key ({e}): it should be one line starting "
                "with ssh-ed25519 or ssh-rsa")
    except Exception as e:  # cryptography raises UnsupportedAlgorithm for odd key types
        return f"ssh_public_key {path} uses an unsupported key type ({e}): use ssh-ed25519 or ssh-rsa"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"ssh_public_key {path} is a {key.key_size}-bit RSA key: AWS needs at least 2048 bits"
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return f"ssh_public_key {path} is a {type(key).__name__}: EC2 key pairs accept only RSA or ED25519"
    return None


def local_problems(p: CreateParams) -> tuple[list[str], list[str]]:
    """Every problem findable without calling anything. Returns ``(problems, notes)``."""
    problems: list[str] = []
    notes: list[str] = []
    if p.cloud not in CLOUDS:
        problems.append(f"cloud {p.cloud!r} is not supported by this runbook: use aws")
    if p.provider not in PROVIDERS:
        problems.append(f"provider {p.provider!r} is unknown: use kops (AWS) or sandbox (local cluster)")
    if (msg := cluster_name_problem(p.cluster_name)) is not None:
        problems.append(msg)
    if not _REGION.match(p.region):
        problems.append(f"region {p.region!r} is not an AWS region name such as eu-central-1")
    else:
        problems += zone_problems(p.region, p.zones)
        problems += zone_problems(p.region, p.control_plane_zones, "control_plane_zones")
    stray = [z for z in p.control_plane_zones if z not in p.zones]
    if stray and p.zones:
        problems.append(f"control_plane_zones {', '.join(stray)} are not in zones ({', '.join(p.zones)}): "
                        "kops puts control-plane nodes in the cluster's subnets, so add them to zones")
    if p.control_plane_zones and len(p.control_plane_zones) % 2 == 0:
        problems.append(f"control_plane_zones has {len(p.control_plane_zones)} zones: etcd needs an odd "
                        "number (1 for no HA, 3 for HA)")
    if not 1 <= p.node_count <= 500:
        problems.append(f"node_count {p.node_count} is out of range: give 1 to 500")
    elif p.zones and p.node_count < len(p.zones):
        notes.append(f"node_count {p.node_count} is smaller than the {len(p.zones)} zones: "
                     "some zones get no node")
    problem, note = cidr_problem(p.network_cidr, p.provider)
    if problem:
        problems.append(problem)
    if note:
        notes.append(note)
    if p.topology not in TOPOLOGIES:
        problems.append(f"topology {p.topology!r} is unknown: use private (recommended) or public")
    elif p.bastion and p.topology != "private":
        problems.append("bastion needs topology private (kops only builds a bastion for private subnets)")
    if p.networking not in NETWORKING:
        problems.append(f"networking {p.networking!r} is not a kops networking option: use one of "
                        f"{', '.join(sorted(set(NETWORKING)))}")
    if (msg := ssh_key_problem(p.ssh_public_key)) is not None:
        problems.append(msg)
    bucket = p.state_bucket
    if not is_s3(p.state_store) or not _BUCKET.match(bucket):
        problems.append(f"state_store {p.state_store!r} is not an S3 URL: use s3://<bucket>, e.g. "
                        "s3://mycompany-kops-state")
    if not _K8S_VERSION.match(p.kubernetes_version):
        problems.append(f"kubernetes_version {p.kubernetes_version!r} is not a version such as 1.33.1")
    if not _KOPS_VERSION.match(p.kops_version):
        problems.append(f"kops_version {p.kops_version!r} is not a version such as v1.33.1")
    if p.node_cpu_credits not in CPU_CREDITS:
        problems.append(f"node_cpu_credits {p.node_cpu_credits!r} is unknown: use standard, unlimited "
                        "or default")
    for field_name in ("node_size", "control_plane_size"):
        value = getattr(p, field_name)
        if not re.match(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", value):
            problems.append(f"{field_name} {value!r} is not an EC2 instance type such as t3.medium")
    return problems, notes


def describe_instance_types(types: Iterable[str], region: str, ec2: Any = None) -> dict[str, dict[str, Any]]:
    """EC2's description of each instance type that exists (missing types are absent).

    Asks one type at a time so an unknown type does not hide the others.

    Raises:
        AwsError: EC2 could not be asked at all (credentials, endpoint).
    """
    ec2 = ec2 or aws_client("ec2", region)
    out: dict[str, dict[str, Any]] = {}
    for t in dict.fromkeys(types):
        try:
            with boundary(f"ec2 describe-instance-types {t}"):
                found = ec2.describe_instance_types(InstanceTypes=[t])["InstanceTypes"]
        except AwsError as e:
            if e.code.startswith("InvalidInstanceType"):
                continue
            raise
        if found:
            out[t] = found[0]
    return out


def _fail(problems: list[str]) -> BadInput:
    body = "; ".join(problems)
    return BadInput(f"The create-cluster parameters need fixing before anything is called: {body}. "
                    "Nothing was called or created.")


def validate(
    *,
    cluster_name: str,
    region: str,
    zones: str | Sequence[str],
    node_size: str,
    node_count: int,
    control_plane_zones: str | Sequence[str],
    control_plane_size: str,
    network_cidr: str,
    topology: str,
    networking: str,
    bastion: bool,
    ssh_public_key: str,
    state_store: str,
    kubernetes_version: str,
    kops_version: str,
    cloud: str = "aws",
    node_cpu_credits: str = "",
    provider: str = "kops",
    ec2: Any = None,
    check_instance_types: bool = True,
) -> CreateParams:
    """Check the runbook's parameters; raise one clear :class:`BadInput` listing every problem.

    The local checks run first and fail before any call. Then EC2 is asked whether
    the instance types exist (read-only ``DescribeInstanceTypes``).

    Args:
        cluster_name: see :class:`CreateParams`; the other arguments likewise. Lists
            may be given as comma-separated strings.
        ec2: an EC2 client (default: one for ``region``).
        check_instance_types: set False to skip the EC2 call (pure checks only).
        region: see :class:`CreateParams`.
        zones: see :class:`CreateParams`.
        node_size: see :class:`CreateParams`.
        node_count: see :class:`CreateParams`.
        control_plane_zones: see :class:`CreateParams`.
        control_plane_size: see :class:`CreateParams`.
        network_cidr: see :class:`CreateParams`.
        topology: see :class:`CreateParams`.
        networking: see :class:`CreateParams`.
        bastion: see :class:`CreateParams`.
        ssh_public_key: see :class:`CreateParams`.
        state_store: see :class:`CreateParams`.
        kubernetes_version: see :class:`CreateParams`.
        kops_version: see :class:`CreateParams`.
        cloud: see :class:`CreateParams`.
        node_cpu_credits: see :class:`CreateParams`.
        provider: see :class:`CreateParams`.

    Returns:
        The checked parameters.

    Raises:
        BadInput: something is wrong; the message says what to fix.
    """
    p = CreateParams(
        cluster_name=cluster_name.strip(), region=region.strip(), zones=split_list(zones),
        node_size=node_size.strip(), node_count=int(node_count),
        control_plane_zones=split_list(control_plane_zones), control_plane_size=control_plane_size.strip(),
        network_cidr=network_cidr.strip(), topology=topology.strip(), networking=networking.strip(),
        bastion=bool(bastion), ssh_public_key=ssh_public_key.strip(),
        state_store=state_store.strip().rstrip("/"),
        kubernetes_version=kubernetes_version.strip().removeprefix("v"), kops_version=kops_version.strip(),
        cloud=cloud.strip(), node_cpu_credits=node_cpu_credits.strip(), provider=provider.strip(),
    )
    problems, notes = local_problems(p)
    if problems:
        raise _fail(problems)
    credits = "" if p.node_cpu_credits == "default" else p.node_cpu_credits
    p = replace(p, networking=NETWORKING[p.networking], node_cpu_credits=credits, notes=tuple(notes))
    if check_instance_types:
        try:
            known = describe_instance_types(p.instance_types, p.region, ec2)
        except AwsError as e:  # no credentials, endpoint down, API missing: the preflight says which
            log.warning("cannot check instance types: %s", e)
            return replace(p, notes=(*p.notes, f"instance types not checked: {e}"))
        missing = [t for t in p.instance_types if t not in known]
        if missing:
            raise _fail([f"instance type {t} does not exist in {p.region} (EC2 DescribeInstanceTypes "
                         "does not know it): pick one from `aws ec2 describe-instance-types --query "
                         "'InstanceTypes[].InstanceType'`, e.g. t3.medium or m6i.large" for t in missing])
    return p
