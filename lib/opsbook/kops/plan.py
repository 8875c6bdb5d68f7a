"""The plan of ``kops create cluster``: exact commands, kops' own dry-run specs, AWS resources.

:func:`commands` gives the command lines the runbook will run (modern
``--control-plane-*`` flags). :func:`dry_run` runs ``kops create cluster ...
--dry-run -o yaml`` when a kops binary is present and parses the Cluster and
InstanceGroup documents it prints; without kops, :func:`expected_instance_groups`
derives the same instance groups from the parameters. :func:`aws_resources`
summarises what kops will create in AWS.

kops needs a channel. ``pinned`` means the stable channel file shipped with the
pinned kops source in the Go module cache (reproducible, works offline);
``stable``/``alpha`` fetch the live channel from GitHub.

On the opsbook sandbox (its env file sets ``OPSBOOK_SANDBOX`` and
``AWS_ENDPOINT_URL``) :func:`sandbox_fit` adapts the kops path by itself and says
so in the plan: kops' node binaries come from the local file repository
(``spec.assets.fileRepository``), ``kops update`` leaves the kubeconfig alone,
and an instance type moto cannot launch from a kops launch template (m3.medium:
instance-store disks) is replaced by a stand-in, reported as a sandbox limitation.

:func:`update_preview` parses ``kops update cluster`` without ``--yes``: what kops
would still create, modify or delete. Apply uses it to resume a half-failed update.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import AwsError, BadInput, RunbookFailed, ToolchainError
from opsbook.kops.params import CreateParams
from opsbook.kops.spec import distribute
from opsbook.kops.toolchain import assets_missing, channel_file, file_repository, find_kops, plan_architectures

log = logging.getLogger(__name__)

IG_COLUMNS = ["name", "role", "machine_type", "min_size", "max_size", "zones", "cpu_credits", "image"]
BASTION_SIZE = "t3.micro"  # kops 1.30-1.34 default bastion machine type on AWS
# kops/AWS SDK lines that say nothing useful offline or on moto; hidden from streamed output.
NOISE = (
    re.compile(r"failed to digest image"),
    re.compile(r"Response has no supported checksum"),
    re.compile(r"skipping non-matching instance type offering"),
)


def is_noise(line: str) -> bool:
    """Whether a kops output line is known noise (image digests offline, SDK checksum warnings)."""
    return any(p.search(line) for p in NOISE)


def resolve_channel(channel: str, kops_version: str) -> str:
    """The ``--channel`` value for ``channel`` (``pinned``, ``stable``, ``alpha``, or a URL)."""
    if channel == "pinned":
        f = channel_file(kops_version)
        if f.exists():
            return f"file://{f}"
        log.warning("pinned channel file %s missing; falling back to the live stable channel", f)
        return "stable"
    if channel in ("stable", "alpha") or re.match(r"^(file|https?|s3)://", channel):
        return channel
    raise BadInput(f"channel {channel!r} is unknown: use pinned, stable, alpha or a file:// / https:// URL")


def create_args(params: CreateParams, *, channel: str = "", dry_run: bool = False,
                extra_args: Sequence[str] = ()) -> list[str]:
    """Arguments of ``kops create cluster`` (without the ``kops`` executable)."""
    args = ["create", "cluster", "--cloud", params.cloud, "--name", params.cluster_name,
            "--zones", ",".join(params.zones), "--node-size", params.node_size,
            "--node-count", str(params.node_count),
            "--control-plane-zones", ",".join(params.control_plane_zones),
            "--control-plane-size", params.control_plane_size,
            "--network-cidr", params.network_cidr, "--topology", params.topology,
            "--networking", "kopeio-vxlan" if params.networking == "kopeio" else params.networking]
    if params.bastion:
        args.append("--bastion")
    if params.ssh_public_key:
        args += ["--ssh-public-key", params.ssh_public_key]
    args += ["--state", params.state_store, "--kubernetes-version", params.kubernetes_version]
    if channel:
        args += ["--channel", channel]
    args += list(extra_args)
    if dry_run:
        args += ["--dry-run", "-o", "yaml"]
    return args


def update_args(params: CreateParams, *, target: str = "direct", out_dir: str = "",
                yes: bool = True, extra_args: Sequence[str] = ()) -> list[str]:
    """Arguments of ``kops update cluster`` (``target``: ``direct`` or ``terraform``)."""
    args = ["update", "cluster", "--name", params.cluster_name, "--state", params.state_store, *extra_args]
    if target == "terraform":
        if not out_dir:
            raise BadInput("target terraform needs out_dir: the folder kops writes kubernetes.tf into")
        args += ["--target=terraform", "--out", out_dir]
    elif target != "direct":
        raise BadInput(f"target {target!r} is unknown: use direct (AWS API) or terraform")
    if yes:
        args.append("--yes")
    return args


def spec_file(params: CreateParams, out_dir: str = "") -> str:
    """Where apply saves the reviewed dry-run spec before ``kops create -f``.

    ``out_dir``, else ``$OPSBOOK_OUTPUT_DIR`` (so `opsbook run` keeps it beside the report), else a
    folder under the system temp dir; never the working directory.
    """
    base = out_dir or os.environ.get("OPSBOOK_OUTPUT_DIR") or str(Path(tempfile.gettempdir()) / "opsbook-kops")
    Path(base).mkdir(parents=True, exist_ok=True)
    return str(Path(base) / f"{params.cluster_name}.yaml")


def create_from_file_args(params: CreateParams, path: str) -> list[str]:
    """Arguments of ``kops create -f`` for the saved spec."""
    return ["create", "-f", path, "--state", params.state_store]


def commands(params: CreateParams, *, channel: str = "stable", target: str = "direct", out_dir: str = "",
             extra_args: Sequence[str] = (), update_extra: Sequence[str] = ()) -> list[str]:
    """The exact command lines, in order, that apply runs (then validation).

    Apply stores exactly the spec this plan showed: ``kops create cluster ... --dry-run -o yaml``
    into a file, ``kops create -f`` that file, then ``kops update cluster --yes``. That equals
    ``kops create cluster ...`` + ``kops update cluster --yes``, minus the preview ``create``
    runs in between (which is what ``kops update`` without ``--yes`` shows anyway).
    """
    path = str(Path(out_dir) / f"{params.cluster_name}.yaml") if out_dir else f"{params.cluster_name}.yaml"
    dry = create_args(params, channel=channel, extra_args=extra_args, dry_run=True)
    lines = [shlex.join(["kops", *dry]) + f" > {shlex.quote(path)}",
             shlex.join(["kops", *create_from_file_args(params, path)]),
             shlex.join(["kops", *update_args(params, target=target, out_dir=out_dir, extra_args=update_extra)])]
    if target == "terraform":
        lines.append(f"(cd {shlex.quote(out_dir)} && terraform init && terraform apply)")
    lines.append(shlex.join(["kops", "validate", "cluster", "--name", params.cluster_name, "--state",
                             params.state_store, "--wait", "15m"]))
    return lines


def expected_instance_groups(params: CreateParams) -> pd.DataFrame:
    """The instance groups kops 1.30+ creates for these parameters (no kops needed).

    One ``control-plane-<zone>`` per control-plane zone, ``nodes-<zone>`` with the
    node count spread over the zones (first zones get the extra), and ``bastions``
    when asked for.

    Returns:
        Columns ``name, role, machine_type, min_size, max_size, zones, cpu_credits, image``.
    """
    rows: list[dict[str, Any]] = [
        {"name": f"control-plane-{z}", "role": "ControlPlane", "machine_type": params.control_plane_size,
         "min_size": 1, "max_size": 1, "zones": z, "cpu_credits": "", "image": ""}
        for z in params.control_plane_zones
    ]
    for zone, n in zip(params.zones, distribute(params.node_count, len(params.zones)), strict=True):
        if n:
            rows.append({"name": f"nodes-{zone}", "role": "Node", "machine_type": params.node_size,
                         "min_size": n, "max_size": n, "zones": zone, "cpu_credits": params.node_cpu_credits,
                         "image": ""})
    if params.bastion:
        rows.append({"name": "bastions", "role": "Bastion", "machine_type": BASTION_SIZE, "min_size": 1,
                     "max_size": 1, "zones": ",".join(params.zones), "cpu_credits": "", "image": ""})
    return pd.DataFrame(rows, columns=IG_COLUMNS)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The YAML documents kops printed (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def instance_groups_frame(docs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """InstanceGroup documents as a frame (columns as :func:`expected_instance_groups`)."""
    rows = []
    for d in docs:
        if d.get("kind") != "InstanceGroup":
            continue
        s = d.get("spec", {})
        role = s.get("role", "")
        rows.append({"name": d["metadata"]["name"], "role": "ControlPlane" if role == "Master" else role,
                     "machine_type": s.get("machineType", ""), "min_size": int(s.get("minSize", 0)),
                     "max_size": int(s.get("maxSize", 0)), "zones": ",".join(s.get("subnets", [])),
                     "cpu_credits": s.get("cpuCredits", ""), "image": s.get("image", "")})
    return pd.DataFrame(rows, columns=IG_COLUMNS)


def cluster_summary(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The essentials of the Cluster document: version, networking, topology, subnets, DNS, API."""
    cluster = next((d for d in docs if d.get("kind") == "Cluster"), None)
    if cluster is None:
        return {}
    s = cluster.get("spec", {})
    return {
        "name": cluster["metadata"]["name"],
        "kubernetes_version": s.get("kubernetesVersion"),
        "network_cidr": s.get("networkCIDR"),
        "networking": ",".join(s.get("networking", {}).keys() - {"networkCIDR", "subnets", "topology",
                                                                  "nonMasqueradeCIDR"}) or None,
        "dns": s.get("topology", {}).get("dns", {}).get("type") or s.get("networking", {}).get("topology", {})
        .get("dns", {}).get("type"),
        "api_load_balancer": s.get("api", {}).get("loadBalancer", {}).get("type"),
        "subnets": [f"{x['name']} {x.get('type', '')} {x.get('cidr', '')}" for x in
                    s.get("subnets", s.get("networking", {}).get("subnets", []))],
        "etcd_clusters": [e["name"] for e in s.get("etcdClusters", [])],
        "config_base": s.get("configBase"),
    }


@dataclass
class Plan:
    """What ``kops create cluster`` would do.

    Attributes:
        commands: the command lines apply runs, in order.
        source: ``kops dry-run`` (specs printed by kops) or ``derived`` (no kops binary).
        yaml: kops' dry-run YAML (empty when derived).
        instance_groups: frame of :func:`expected_instance_groups`' columns.
        cluster: :func:`cluster_summary` of the Cluster document (empty when derived).
        resources: :func:`aws_resources`.
        log: kops' stderr lines that are not noise.
        notes: how the plan was adapted to the sandbox (:attr:`SandboxFit.notes`), empty elsewhere.
    """

    commands: list[str]
    source: str
    yaml: str
    instance_groups: pd.DataFrame
    cluster: dict[str, Any]
    resources: pd.DataFrame
    log: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary for :func:`opsbook.report.record`."""
        return {"source": self.source, "commands": self.commands,
                "instance_groups": self.instance_groups.to_dict("records"), "cluster": self.cluster,
                "resources": self.resources.to_dict("records"), "notes": self.notes}

    def describe(self) -> str:
        """Where the plan comes from, then how it was adapted to the sandbox (one line each)."""
        return "\n".join([f"source: {self.source}", *self.notes])


# -- the local sandbox -----------------------------------------------------------------------------
SANDBOX_STAND_IN = "t3.medium"  # 2 vCPU / 4 GiB, no instance store: what moto launches in place of m3.medium
# Changes kops asks for on every run because moto does not store or report them as AWS does:
# (resource kind, fields, why). Only these fields are dropped; any other field of the same resource
# (e.g. Tags) stays pending.
# - SSHKey: kops names the key pair after the key's own MD5 fingerprint
#   (``kubernetes.<cluster>-<md5>``), so finding a pair of that name means the same key is there. For an
#   ed25519 key AWS's DescribeKeyPairs returns base64 SHA-256 (kops prefixes ``SHA256:``), moto 5.2.5
#   colon-separated hex SHA-256 of the DER key, so kops' fingerprints never match and it reports
#   ``PublicKey <nil> -> <resource>, KeyFingerprint SHA256:20:f3:.. -> SHA256:/3+J..`` on every run.
#   Applying it is a no-op: ``SSHKey.RenderAWS`` of an existing pair only re-applies its tags
#   (kops v1.33 ``upup/pkg/fi/cloudup/awstasks/sshkey.go``). RSA keys match (both MD5 of the DER key).
SANDBOX_NEVER_CONVERGES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Subnet", ("ResourceBasedNaming",), "moto ignores ModifySubnetAttribute PrivateDnsHostnameTypeOnLaunch (a "
     "subnet's hostname type stays ip-name), so kops asks to set resource-based naming on every run"),
    ("SSHKey", ("PublicKey", "KeyFingerprint"), "moto writes an ed25519 key pair's fingerprint as hex, AWS as "
     "base64 SHA-256, so kops asks to re-set the key it found by name on every run (a no-op: the name "
     "carries the key's fingerprint)"),
)


def on_sandbox(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default: this process's) is the opsbook sandbox's: its env file sets both."""
    e = os.environ if env is None else env
    return bool(e.get("OPSBOOK_SANDBOX") and e.get("AWS_ENDPOINT_URL"))


def moto_launch_problem(instance_type: str, info: Mapping[str, Any]) -> str:
    """Why moto cannot launch ``instance_type`` from a kops launch template ("" when it can).

    kops maps every non-NVMe instance-store disk of the type as ``ephemeralN`` (a block device
    mapping with a ``VirtualName`` and no ``Ebs``); moto 5.x's ``run_instances`` reads ``Ebs`` of
    every mapping of a launch template and fails. ``info`` is the type's ``DescribeInstanceTypes`` entry.
    """
    storage = info.get("InstanceStorageInfo") or {}
    if not info.get("InstanceStorageSupported") or not storage.get("Disks"):
        return ""
    if storage.get("NvmeSupport") == "required":
        return ""
    disks = sum(int(d.get("Count", 1)) for d in storage["Disks"])
    return (f"moto cannot launch {instance_type} from a kops launch template: kops maps its {disks} "
            "instance-store disk(s) as ephemeral devices (no Ebs block), which moto's run_instances "
            "cannot read")


@dataclass(frozen=True)
class SandboxFit:
    """How the kops path adapts to the opsbook sandbox (nothing changes off the sandbox).

    Attributes:
        active: whether the environment is the opsbook sandbox (:func:`on_sandbox`).
        file_repository: ``file://`` URL of kops' node binaries built locally (``spec.assets.fileRepository``).
        missing_assets: node binaries of the kops version not built yet (apply refuses until they are).
        substitutions: ``(role, requested type, type used on the sandbox, why)``.
        notes: one line per adaptation, shown with the plan.
    """

    active: bool = False
    file_repository: str = ""
    missing_assets: tuple[str, ...] = ()
    substitutions: tuple[tuple[str, str, str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def set_aside(self, preview: Preview) -> tuple[Preview, list[str]]:
        """On the sandbox, drop from ``preview`` the changes moto never lets converge (:data:`SANDBOX_NEVER_CONVERGES`).

        Returns:
            The preview without them, and one note per kind of change set aside (empty off the sandbox).
        """
        if not self.active:
            return preview, []
        modify = {r: list(f) for r, f in preview.modify.items()}
        notes = []
        for kind, fields, why in SANDBOX_NEVER_CONVERGES:
            hits = [r for r, f in modify.items() if r.startswith(f"{kind}/") and set(fields) & set(f)]
            for r in hits:
                modify[r] = [f for f in modify[r] if f not in fields]
                if not modify[r]:
                    del modify[r]
            if hits:
                notes.append(f"sandbox limitation: {why}; {len(hits)} such change(s) ({kind} {', '.join(fields)}) "
                             "not counted as pending here")
        return Preview(list(preview.create), modify, list(preview.delete)), notes

    @property
    def create_args(self) -> list[str]:
        """Extra ``kops create cluster`` flags."""
        return ["--set", f"spec.assets.fileRepository={self.file_repository}"] if self.file_repository else []

    @property
    def update_args(self) -> list[str]:
        """Extra ``kops update cluster`` flags (the sandbox's kubeconfig stays the sandbox's)."""
        return ["--create-kube-config=false"] if self.active else []

    def fit(self, params: CreateParams) -> CreateParams:
        """``params`` with the instance types moto cannot launch replaced by their stand-ins."""
        swap = {requested: used for _, requested, used, _ in self.substitutions}
        return replace(params, node_size=swap.get(params.node_size, params.node_size),
                       control_plane_size=swap.get(params.control_plane_size, params.control_plane_size))


def _instance_type_info(region: str, types: Sequence[str]) -> dict[str, dict[str, Any]]:
    ec2 = aws_client("ec2", region)
    with boundary("ec2 describe-instance-types"):
        found = ec2.describe_instance_types(InstanceTypes=list(types))["InstanceTypes"]
    return {t["InstanceType"]: t for t in found}


def channel_images_missing(params: CreateParams, arches: Sequence[str] = ("amd64",)) -> list[str]:
    """The newest AWS image of kops' pinned channel, per architecture, that EC2 does not list.

    One DescribeImages call per architecture. On AWS every channel image exists; on the sandbox they
    exist only when moto was started after kops was built (the sandbox registers them at start).
    Without the channel file (kops not built) nothing can be checked: ``[]``.
    """
    path = channel_file(params.kops_version)
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text()) or {}
    missing = []
    ec2 = aws_client("ec2", params.region)
    for arch in arches:
        images = [str(i.get("name", "")) for i in (doc.get("spec") or {}).get("images") or []
                  if i.get("providerID") == "aws" and str(i.get("architectureID", "amd64")) == arch
                  and re.match(r"^\d{12}/", str(i.get("name", "")))]
        if not images:
            continue
        owner, name = images[-1].split("/", 1)
        with boundary("ec2 describe-images"):
            found = ec2.describe_images(Owners=[owner], Filters=[{"Name": "name", "Values": [name]}])["Images"]
        if not found:
            missing.append(images[-1])
    return missing


def sandbox_fit(params: CreateParams, env: Mapping[str, str] | None = None) -> SandboxFit:
    """The adaptations the sandbox needs for ``params`` (an inactive fit off the sandbox).

    On the sandbox: kops' node binaries come from :func:`opsbook.kops.toolchain.file_repository`
    (there is no artifacts.k8s.io offline), ``kops update`` does not rewrite the kubeconfig (it would
    point it at an API server the sandbox does not run), and an instance type moto cannot launch from
    a kops launch template (:func:`moto_launch_problem`) becomes :data:`SANDBOX_STAND_IN`. The images
    of kops' pinned channel are registered in moto by the sandbox itself (see
    :mod:`opsbook.sandbox.kops_images`), so no ``--image`` is needed.
    """
    if not on_sandbox(env):
        return SandboxFit()
    repo = file_repository(params.kops_version)
    missing = tuple(assets_missing(params.kops_version, plan_architectures(
        [params.control_plane_size, params.node_size, BASTION_SIZE if params.bastion else ""])))
    notes = [f"sandbox: kops' node binaries (nodeup, protokube, channels) come from the local file repository "
             f"file://{repo} (spec.assets.fileRepository); on AWS kops downloads them from artifacts.k8s.io",
             "sandbox: `kops update cluster --create-kube-config=false` keeps the sandbox's kubeconfig"]
    if missing:
        notes.append(f"sandbox: node binaries not built yet ({', '.join(missing)}): apply builds them first "
                     "(`opsbook toolchain --kops` builds them ahead)")
    roles = {"control plane": params.control_plane_size, "nodes": params.node_size}
    try:
        info = _instance_type_info(params.region, sorted(set(roles.values())))
    except AwsError as e:
        info = {}
        notes.append(f"sandbox: could not ask moto about instance types ({e}); sizes used as given")
    subs = []
    for role, itype in roles.items():
        why = moto_launch_problem(itype, info.get(itype, {}))
        if why:
            subs.append((role, itype, SANDBOX_STAND_IN, why))
            notes.append(f"sandbox limitation (not a problem with your parameters): {why}. On the sandbox the "
                         f"{role} runs {SANDBOX_STAND_IN} instead; on AWS it is {itype} as asked")
    return SandboxFit(True, f"file://{repo}", missing, tuple(subs), tuple(notes))


# -- what `kops update cluster` would still do -----------------------------------------------------
@dataclass
class Preview:
    """``kops update cluster`` without ``--yes``: what it would still do to the cloud.

    Attributes:
        create: ``Kind/name`` of each resource kops would create.
        modify: ``Kind/name`` → the fields it would change.
        delete: ``Kind name`` of each item it would delete during the update (``--prune`` ones excluded).
    """

    create: list[str] = field(default_factory=list)
    modify: dict[str, list[str]] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        """One line per pending change: ``create Kind/name``, ``modify Kind/name (Field, ...)``, ``delete ...``."""
        return ([f"create {r}" for r in self.create]
                + [f"modify {r} ({', '.join(f) or '?'})" for r, f in self.modify.items()]
                + [f"delete {r}" for r in self.delete])


_SECTIONS = {"Will create resources:": "create", "Will modify resources:": "modify",
             "Items will be deleted during update:": "delete",
             "Items will be deleted only when the --prune flag is specified:": ""}


def parse_preview(text: str) -> Preview:
    """Parse the output of ``kops update cluster`` without ``--yes`` (see kops' ``dryrun_target.go``)."""
    out = Preview()
    section = ""
    current = ""
    for line in text.splitlines():
        if line in _SECTIONS:
            section, current = _SECTIONS[line], ""
        elif not line.startswith("  "):
            if line.strip():
                section = ""
        elif not section:
            continue
        elif re.match(r"^  \S", line):
            current = " ".join(line.split())
            if section == "create":
                out.create.append(current)
            elif section == "modify":
                out.modify[current] = []
            else:
                out.delete.append(current)
        elif section == "modify" and current:
            m = re.match(r"^  \t(\S+)", line)
            if m and m.group(1) not in out.modify[current]:
                out.modify[current].append(m.group(1))
    return out


def update_preview(params: CreateParams, kops: Path, env: Mapping[str, str],
                   extra_args: Sequence[str] = ()) -> Preview:
    """Run ``kops update cluster`` without ``--yes`` (changes nothing) and parse what it would do.

    Raises:
        RunbookFailed: kops could not build the preview (e.g. an image it cannot find).
    """
    proc = run_kops(kops, update_args(params, yes=False, extra_args=extra_args), env, timeout=600, check=False)
    if proc.returncode != 0:
        raise RunbookFailed(f"`kops update cluster` (preview, no --yes) exited {proc.returncode}: "
                            f"{last_error(proc.stderr)}")
    return parse_preview(proc.stdout)


def kops_env(params: CreateParams, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for kops: the caller's, with the state store set and no stray cluster name."""
    env = dict(base if base is not None else os.environ)
    env["KOPS_STATE_STORE"] = params.state_store
    env.pop("KOPS_CLUSTER_NAME", None)  # we always pass --name; a stale one confuses `kops get`
    return env


def run_kops(kops: Path, args: Sequence[str], env: Mapping[str, str], timeout: float = 300,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run kops, capturing output. With ``check``, a non-zero exit raises :class:`RunbookFailed`."""
    log.debug("running %s %s", kops, shlex.join(args))
    proc = subprocess.run([str(kops), *args], env=dict(env), capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise RunbookFailed(f"`kops {shlex.join(args)}` exited {proc.returncode}: {last_error(proc.stderr)}")
    return proc


def last_error(stderr: str) -> str:
    """The ``Error: ...`` line of kops' stderr, else its last meaningful lines."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not is_noise(ln)]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    return errors[-1] if errors else " | ".join(lines[-3:])


def dry_run_yaml(params: CreateParams, kops: Path, dry_args: Sequence[str],
                 env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``kops create cluster ... --dry-run -o yaml``, also when the cluster exists already.

    kops refuses a name its state store knows; then the dry run goes to an empty
    scratch ``file://`` state store and ``configBase`` is put back in the YAML.
    """
    proc = run_kops(kops, dry_args, env, timeout=180, check=False)
    if proc.returncode != 0 and "already exists" in proc.stderr:
        with tempfile.TemporaryDirectory(prefix="opsbook-kops-scratch-") as scratch:
            args = list(dry_args)
            args[args.index("--state") + 1] = f"file://{scratch}"
            proc = run_kops(kops, args, env, timeout=180, check=False)
            proc.stdout = proc.stdout.replace(f"configBase: {scratch}/",
                                              f"configBase: {params.state_store}/")
    if proc.returncode != 0:
        raise RunbookFailed(f"`kops {shlex.join(dry_args)}` exited {proc.returncode}: "
                            f"{last_error(proc.stderr)}")
    return proc


def dry_run(params: CreateParams, *, channel: str = "pinned", extra_args: Sequence[str] = (),
            kops: Path | None = None, env: Mapping[str, str] | None = None, target: str = "direct",
            out_dir: str = "") -> Plan:
    """Plan the cluster: kops' own dry-run specs when kops is present, else derived from the parameters.

    Args:
        params: from :func:`opsbook.kops.params.validate`.
        channel: ``pinned``, ``stable``, ``alpha`` or a URL (see module docstring).
        extra_args: more ``kops create cluster`` flags (e.g. ``--image``).
        kops: the kops binary (default: the pinned one, else one on PATH).
        env: environment for kops (default: this process's).
        target: ``direct`` or ``terraform`` (only changes the command lines).
        out_dir: terraform output folder.

    Raises:
        RunbookFailed: kops ran and refused the parameters (its error is in the message).
    """
    ch = resolve_channel(channel, params.kops_version)
    sandbox = sandbox_fit(params, env)
    params = sandbox.fit(params)
    extra_args = [*sandbox.create_args, *extra_args]
    cmds = commands(params, channel=ch, target=target, out_dir=out_dir, extra_args=extra_args,
                    update_extra=sandbox.update_args)
    resources = aws_resources(params)
    kops = kops or find_kops(params.kops_version)
    notes = list(sandbox.notes)
    if kops is None:
        return Plan(cmds, "derived", "", expected_instance_groups(params), {}, resources,
                    ["kops is not installed: instance groups derived from the parameters "
                     "(run `opsbook toolchain --kops` to build the pinned kops)"], notes)
    proc = dry_run_yaml(params, kops, create_args(params, channel=ch, dry_run=True, extra_args=extra_args),
                        kops_env(params, env))
    docs = parse_documents(proc.stdout)
    if not any(d.get("kind") == "Cluster" for d in docs):
        raise ToolchainError(f"kops --dry-run printed no Cluster document: {last_error(proc.stderr)}")
    noise_free = [ln for ln in proc.stderr.splitlines() if ln.strip() and not is_noise(ln)]
    return Plan(cmds, "kops dry-run", proc.stdout, instance_groups_frame(docs), cluster_summary(docs),
                resources, noise_free, notes)


def aws_resources(params: CreateParams) -> pd.DataFrame:
    """The AWS resources kops creates for these parameters (kops 1.30-1.34, AWS).

    Returns:
        Columns ``resource, count, detail``; costly ones say so.
    """
    z = len(params.zones)
    cp = len(params.control_plane_zones)
    igs = len(expected_instance_groups(params))
    private = params.topology == "private"
    rows: list[tuple[str, int, str]] = [
        ("VPC", 1, f"{params.network_cidr}, with DHCP options"),
        ("Internet gateway", 1, ""),
        ("Subnets", 2 * z if private else z,
         f"{z} private + {z} utility (public)" if private else f"{z} public"),
    ]
    if private:
        rows += [("NAT gateways + Elastic IPs", z, "one per zone; billed hourly plus per GB"),
                 ("Route tables", 1 + z, "1 public + 1 per private zone")]
    else:
        rows.append(("Route tables", 1, "public"))
    rows += [
        ("Security groups", 3 + (2 if params.bastion else 0),
         "control plane, nodes, API load balancer" + (", bastion, bastion LB" if params.bastion else "")),
        ("Network load balancers", 1 + (1 if params.bastion else 0),
         "public Kubernetes API" + (" + bastion SSH" if params.bastion else "")),
        ("Auto Scaling groups + launch templates", igs, "one per instance group"),
        ("EC2 instances", cp + params.node_count + (1 if params.bastion else 0),
         f"{cp} × {params.control_plane_size}, {params.node_count} × {params.node_size}"
         + (f", 1 × {BASTION_SIZE}" if params.bastion else "")),
        ("IAM roles + instance profiles", 2 + (1 if params.bastion else 0),
         "control plane, nodes" + (", bastions" if params.bastion else "")),
        ("EBS volumes (etcd)", 2 * cp, "etcd main + events per control-plane node, 20 GiB gp3, encrypted"),
    ]
    if params.ssh_public_key:
        rows.append(("EC2 key pair", 1, params.ssh_public_key))
    if not params.gossip:
        rows.append(("Route53 records", 3, "api, api.internal, kops-controller.internal"))
    rows.append(("S3 objects", 1, "cluster spec, instance groups, PKI and secrets under "
                                  f"{params.state_store}/{params.cluster_name}/"))
    return pd.DataFrame(rows, columns=["resource", "count", "detail"])
