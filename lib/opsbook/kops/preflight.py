"""Preflight of ``kops create cluster`` against AWS, and advice where the team got burnt.

Every check is read-only and returns one row: ``check, status, severity,
message, object``. ``status`` is ``pass``, ``fail`` (blocks apply), ``warn``
(advice) or ``skip`` (the API is not available here; the reason says why). A
failing row's message says how to fix it, usually with the exact ``aws``
command. The checks, in order:

- ``aws.identity``: the credentials work (``sts get-caller-identity``);
- ``state.bucket`` / ``state.versioning`` / ``state.encryption`` /
  ``state.public-access``: the kops state store exists, keeps every version
  (the cluster state must never be lost), is encrypted by default and cannot be
  made public;
- ``dns.hosted-zone``: a Route53 zone for non-gossip names;
- ``network.cidr-overlap``: the CIDR overlaps no VPC of the region (VPCs
  tagged for this cluster are a re-run, not an overlap);
- ``region.zones``: the region has the zones;
- ``ec2.instance-types``: the instance types exist.

:func:`advice` adds: burstable sizes in standard credit mode (with the cost
of the alternatives), a single control-plane zone, previous-generation types,
a bastion without a key, and the deprecated ``--master-*`` flags.
"""

from __future__ import annotations

import ipaddress
import logging
import shlex
from collections.abc import Callable
from typing import Any

import pandas as pd

from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.data.tables import credit_spec, reference_prices, reference_prices_source
from opsbook.errors import ApiUnavailable, AwsError, RunbookFailed
from opsbook.kops.params import ORIGINAL_COMMAND, CreateParams, describe_instance_types

log = logging.getLogger(__name__)

COLUMNS = ["check", "status", "severity", "message", "object"]
HOURS_PER_MONTH = 730.0

# kops 1.30-1.34: deprecated create-cluster flags and their replacements (cmd/kops/create_cluster.go).
DEPRECATED_FLAGS = {
    "--master-zones": "--control-plane-zones",
    "--master-size": "--control-plane-size",
    "--master-count": "--control-plane-count",
    "--master-image": "--control-plane-image",
    "--master-volume-size": "--control-plane-volume-size",
    "--master-security-groups": "--control-plane-security-groups",
    "--master-tenancy": "--control-plane-tenancy",
    "--master-public-name": "--api-public-name",
}

Row = dict[str, str]
PUBLIC_GRANTEES = ("/AllUsers", "/AuthenticatedUsers")


def _row(check: str, status: str, message: str, obj: str = "", severity: str | None = None) -> Row:
    sev = severity or {"pass": "info", "skip": "low", "warn": "medium", "fail": "high"}[status]
    return {"check": check, "status": status, "severity": sev, "message": message, "object": obj}


# -- the checks -------------------------------------------------------------------------------------
def check_identity(sts: Any) -> Row:
    """Who am I: ``sts get-caller-identity``."""
    try:
        with boundary("sts get-caller-identity"):
            who = sts.get_caller_identity()
    except AwsError as e:
        return _row("aws.identity", "fail", f"AWS credentials do not work: {e}. Set AWS_PROFILE (or "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and check with `aws sts get-caller-identity`.",
                    severity="critical")
    return _row("aws.identity", "pass", f"authenticated as {who['Arn']} (account {who['Account']})",
                who["Arn"])


def check_state_bucket(s3: Any, bucket: str, region: str) -> list[Row]:
    """The state-store bucket: exists, versioning, default encryption, public-access block."""
    obj = f"s3://{bucket}"
    try:
        with boundary(f"s3 head-bucket {bucket}"):
            s3.head_bucket(Bucket=bucket)
    except AwsError as e:
        loc = "" if region == "us-east-1" else f" --create-bucket-configuration LocationConstraint={region}"
        if e.code in ("404", "NoSuchBucket"):
            msg = (f"state-store bucket {bucket} does not exist. Create it, versioned and encrypted: "
                   f"`aws s3api create-bucket --bucket {bucket} --region {region}{loc}`, then rerun to see "
                   "the versioning/encryption/public-access fixes")
        else:
            msg = (f"state-store bucket {bucket} cannot be read ({e}): it may belong to another account "
                   "(bucket names are global) or your role lacks s3:ListBucket; pick another name or grant "
                   "access")
        skipped = "not checked: the bucket is not there"
        return [_row("state.bucket", "fail", msg, obj, severity="critical"),
                *(_row(c, "skip", skipped, obj) for c in ("state.versioning", "state.encryption",
                                                           "state.public-access"))]
    rows = [_row("state.bucket", "pass", f"state-store bucket {bucket} exists", obj)]
    rows.append(_guard("state.versioning", obj, lambda: _versioning(s3, bucket)))
    rows.append(_guard("state.encryption", obj, lambda: _encryption(s3, bucket)))
    rows.append(_guard("state.public-access", obj, lambda: _public_access(s3, bucket)))
    return rows


def _guard(check: str, obj: str, fn: Callable[[], Row]) -> Row:
    try:
        return fn()
    except ApiUnavailable as e:
        return _row(check, "skip", f"could not check: {e}", obj)


def _versioning(s3: Any, bucket: str) -> Row:
    obj = f"s3://{bucket}"
    with boundary(f"s3 get-bucket-versioning {bucket}"):
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "")
    if status == "Enabled":
        return _row("state.versioning", "pass", "versioning is enabled: every state change can be rolled "
                    "back", obj)
    return _row("state.versioning", "fail",
                f"versioning is {'suspended' if status else 'off'} on {bucket}: one bad `kops replace` or "
                "`kops delete` would lose the cluster state for good. Fix: `aws s3api put-bucket-versioning "
                f"--bucket {bucket} --versioning-configuration Status=Enabled`", obj, severity="critical")


def _encryption(s3: Any, bucket: str) -> Row:
    obj = f"s3://{bucket}"
    try:
        with boundary(f"s3 get-bucket-encryption {bucket}"):
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except AwsError as e:
        if e.code != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    algos = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "") for r in rules]
    if any(algos):
        return _row("state.encryption", "pass", f"default encryption: {', '.join(a for a in algos if a)}",
                    obj)
    return _row("state.encryption", "fail",
                f"{bucket} has no default encryption, and the state store holds the cluster's CA keys and "
                "secrets. Fix: `aws s3api put-bucket-encryption --bucket "
                f"{bucket} --server-side-encryption-configuration "
                "'{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"AES256\"}}]}'`",
                obj)


def _public_access(s3: Any, bucket: str) -> Row:
    obj = f"s3://{bucket}"
    try:
        with boundary(f"s3 get-public-access-block {bucket}"):
            cfg = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except AwsError as e:
        if e.code != "NoSuchPublicAccessBlockConfiguration":
            raise
        cfg = {}
    keys = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    open_keys = [k for k in keys if not cfg.get(k)]
    public_grants: list[str] = []
    try:
        with boundary(f"s3 get-bucket-acl {bucket}"):
            grants = s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
        public_grants = [f"{g['Grantee'].get('URI', '').rsplit('/', 1)[-1]}:{g['Permission']}"
                         for g in grants
                         if g.get("Grantee", {}).get("URI", "").endswith(PUBLIC_GRANTEES)]
    except ApiUnavailable:
        pass
    if not open_keys and not public_grants:
        return _row("state.public-access", "pass", "public access is blocked (all four settings on)", obj)
    parts = []
    if open_keys:
        parts.append(f"the public-access block is {'missing' if not cfg else 'incomplete'} "
                     f"({', '.join(open_keys)} off)")
    if public_grants:
        parts.append(f"its ACL grants {', '.join(public_grants)}")
    return _row("state.public-access", "fail",
                f"{bucket} could be public: {' and '.join(parts)}; the state store holds cluster secrets. "
                f"Fix: `aws s3api put-public-access-block --bucket {bucket} "
                "--public-access-block-configuration "
                "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`"
                + (f" and `aws s3api put-bucket-acl --bucket {bucket} --acl private`"
                   if public_grants else ""),
                obj, severity="critical")


def check_hosted_zone(route53: Any, cluster_name: str) -> Row:
    """A Route53 hosted zone that holds ``cluster_name`` (not needed for gossip names)."""
    if cluster_name.endswith(".k8s.local"):
        return _row("dns.hosted-zone", "pass", f"{cluster_name} is a gossip name: no Route53 zone needed",
                    cluster_name)
    try:
        with boundary("route53 list-hosted-zones"):
            zones = [z for page in route53.get_paginator("list_hosted_zones").paginate()
                     for z in page["HostedZones"]]
    except ApiUnavailable as e:
        return _row("dns.hosted-zone", "skip", f"could not list hosted zones: {e}", cluster_name)
    except AwsError as e:
        return _row("dns.hosted-zone", "fail", f"could not list hosted zones: {e}", cluster_name)
    fqdn = cluster_name.rstrip(".") + "."
    matches = sorted((z for z in zones if fqdn == z["Name"] or fqdn.endswith("." + z["Name"])),
                     key=lambda z: len(z["Name"]), reverse=True)
    if matches:
        z = matches[0]
        kind = "private" if z.get("Config", {}).get("PrivateZone") else "public"
        zid = z["Id"].rsplit("/", 1)[-1]
        return _row("dns.hosted-zone", "pass", f"{kind} hosted zone {z['Name']} ({zid}) "
                    f"will hold the records of {cluster_name}", cluster_name)
    parent = cluster_name.split(".", 1)[1] if cluster_name.count(".") >= 2 else cluster_name
    return _row("dns.hosted-zone", "fail",
                f"no Route53 hosted zone holds {cluster_name}. Create one (`aws route53 create-hosted-zone "
                f"--name {parent} --caller-reference $(date +%s)`) and delegate it from the parent domain's "
                "NS records, "
                f"or use a gossip name such as {cluster_name.split('.')[0]}.k8s.local", cluster_name)


def check_cidr_overlap(ec2: Any, cidr: str, cluster_name: str) -> Row:
    """The cluster's CIDR overlaps no existing VPC (VPCs tagged for this cluster are ours)."""
    net = ipaddress.ip_network(cidr)
    try:
        with boundary("ec2 describe-vpcs"):
            vpcs = [v for page in ec2.get_paginator("describe_vpcs").paginate() for v in page["Vpcs"]]
    except ApiUnavailable as e:
        return _row("network.cidr-overlap", "skip", f"could not list VPCs: {e}", cidr)
    clashes: list[str] = []
    own: list[str] = []
    for v in vpcs:
        tags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
        blocks = {v["CidrBlock"], *(a["CidrBlock"] for a in v.get("CidrBlockAssociationSet", []))}
        hit = [b for b in blocks if net.overlaps(ipaddress.ip_network(b))]
        if not hit:
            continue
        mine = (tags.get("KubernetesCluster") == cluster_name
                or f"kubernetes.io/cluster/{cluster_name}" in tags)
        label = f"{v['VpcId']} ({', '.join(sorted(hit))}{', ' + tags['Name'] if 'Name' in tags else ''})"
        (own if mine else clashes).append(label)
    if clashes:
        return _row("network.cidr-overlap", "fail",
                    f"{cidr} overlaps existing VPC(s) {'; '.join(clashes)}: peering, VPN and routing between "
                    "them would break. Pick a free block, e.g. another /16 in 10.0.0.0/8 or 172.16.0.0/12",
                    cidr)
    extra = f" (the cluster's own VPC {'; '.join(own)} already exists: a re-run)" if own else ""
    return _row("network.cidr-overlap", "pass", f"{cidr} overlaps none of the {len(vpcs)} VPCs{extra}", cidr)


def check_zones(ec2: Any, region: str, zones: tuple[str, ...]) -> Row:
    """The region offers every zone (and they are available)."""
    try:
        with boundary("ec2 describe-availability-zones"):
            azs = ec2.describe_availability_zones()["AvailabilityZones"]
    except ApiUnavailable as e:
        return _row("region.zones", "skip", f"could not list zones: {e}", region)
    have = {z["ZoneName"]: z.get("State", "available") for z in azs}
    missing = [z for z in zones if z not in have]
    down = [z for z in zones if have.get(z, "available") != "available"]
    if missing or down:
        parts = []
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            parts.append(f"{', '.join(missing)} {verb} not zone(s) of {region}")
        if down:
            parts.append(f"{', '.join(down)} not available")
        return _row("region.zones", "fail", f"{'; '.join(parts)}: use zones from {', '.join(sorted(have))}",
                    region)
    return _row("region.zones", "pass", f"{region} has {', '.join(zones)}", region)


def check_instance_types(ec2: Any, region: str, types: tuple[str, ...]) -> Row:
    """The instance types exist in the region."""
    try:
        known = describe_instance_types(types, region, ec2)
    except ApiUnavailable as e:
        return _row("ec2.instance-types", "skip", f"could not check instance types: {e}", ", ".join(types))
    missing = [t for t in types if t not in known]
    if missing:
        return _row("ec2.instance-types", "fail",
                    f"instance type(s) {', '.join(missing)} do not exist in {region}: pick one from `aws ec2 "
                    "describe-instance-types --query 'InstanceTypes[].InstanceType'`", ", ".join(missing))
    return _row("ec2.instance-types", "pass", f"{', '.join(types)} exist in {region}", ", ".join(types))


def run_preflight(params: CreateParams, *, sts: Any = None, s3: Any = None, ec2: Any = None,
                  route53: Any = None) -> pd.DataFrame:
    """Run every read-only preflight check against AWS.

    Args:
        params: from :func:`opsbook.kops.params.validate`.
        sts: an STS client (default: the configured one); likewise ``s3``, ``ec2``, ``route53``.
        s3: S3 client.
        ec2: EC2 client.
        route53: Route53 client.

    Returns:
        One row per check: ``check, status (pass|fail|warn|skip), severity, message, object``.
    """
    sts = sts or aws_client("sts", params.region)
    s3 = s3 or aws_client("s3", params.region)
    ec2 = ec2 or aws_client("ec2", params.region)
    route53 = route53 or aws_client("route53", params.region)
    rows = [check_identity(sts)]
    if rows[0]["status"] == "fail":  # nothing else can work without credentials
        return pd.DataFrame(rows, columns=COLUMNS)
    rows += check_state_bucket(s3, params.state_bucket, params.region)
    rows.append(check_hosted_zone(route53, params.cluster_name))
    rows.append(check_cidr_overlap(ec2, params.network_cidr, params.cluster_name))
    all_zones = tuple(dict.fromkeys(params.zones + params.control_plane_zones))
    rows.append(check_zones(ec2, params.region, all_zones))
    rows.append(check_instance_types(ec2, params.region, params.instance_types))
    return pd.DataFrame(rows, columns=COLUMNS)


def failures(result: pd.DataFrame) -> pd.DataFrame:
    """The rows that block apply."""
    return result[result["status"] == "fail"]


def require_pass(result: pd.DataFrame) -> None:
    """Raise :class:`RunbookFailed` listing the failed checks and their fixes, if any failed."""
    bad = failures(result)
    if not bad.empty:
        lines = "; ".join(f"{r.check}: {r.message}" for r in bad.itertuples())
        raise RunbookFailed(f"preflight failed ({len(bad)} check(s)), nothing was created: {lines}")


def preflight_findings(*results: pd.DataFrame) -> list[dict[str, Any]]:
    """Preflight/advice rows as :func:`opsbook.report.findings` records (passes become ``info``)."""
    return [{"check": f"create.{r['check']}", "severity": r["severity"], "message": r["message"],
             "object": r["object"], "group": "create-cluster"}
            for result in results for r in result.to_dict("records")]


# -- advice ----------------------------------------------------------------------------------------
def modernize_flags(command: str) -> tuple[str, dict[str, str]]:
    """Replace deprecated ``--master-*`` flags in a kops command line.

    Returns:
        The rewritten command and the ``{old: new}`` flags that were replaced.
    """
    words = shlex.split(command)
    used: dict[str, str] = {}
    out = []
    for w in words:
        flag, eq, value = w.partition("=")
        if flag in DEPRECATED_FLAGS:
            used[flag] = DEPRECATED_FLAGS[flag]
            w = DEPRECATED_FLAGS[flag] + eq + value
        out.append(w)
    return shlex.join(out).replace("'$CLUSTER_NAME'", "$CLUSTER_NAME"), used


def _price(instance_type: str, region: str) -> tuple[float | None, str]:
    """On-Demand $/h of ``instance_type`` from the shipped reference table, and where it came from."""
    df = reference_prices()
    src = reference_prices_source()
    exact = df[(df["region"] == region) & (df["instance_type"] == instance_type)]
    if not exact.empty:
        return float(exact.iloc[0]["usd_per_hour"]), f"reference table {region} ({src.get('as_of', '?')})"
    ref = df[df["instance_type"] == instance_type]
    if ref.empty:
        return None, "no reference price"
    r = ref.iloc[0]
    return float(r["usd_per_hour"]), (f"reference table {r['region']} ({src.get('as_of', '?')}), "
                                      f"a lower bound for {region}")


def burstable_advice(instance_type: str, count: int, region: str, credit_mode: str, role: str) -> Row | None:
    """Advice for a burstable type that would run in standard credit mode, with the cost of the options."""
    spec = credit_spec(instance_type)
    if spec is None:
        return None
    mode = credit_mode or spec.default_mode
    if mode != "standard":
        return None
    base = spec.baseline_pct
    rate = spec.surplus_usd_per_vcpu_hour
    worst_unlimited = (100 - base) / 100 * spec.vcpu * rate * HOURS_PER_MONTH * count
    price, source = _price(instance_type, region)
    alt = next((a for a in ("m6i.large", "m5.large", "c5.large") if _price(a, region)[0] is not None), None)
    cost = ""
    if price is not None and alt is not None:
        alt_price = _price(alt, region)[0] or 0.0
        cost = (f" Cost for {count}: {instance_type} ${price * HOURS_PER_MONTH * count:,.0f}/month; "
                f"{alt} (non-burstable) ${alt_price * HOURS_PER_MONTH * count:,.0f}/month "
                f"(+${(alt_price - price) * HOURS_PER_MONTH * count:,.0f}); unlimited adds at most "
                f"${worst_unlimited:,.0f}/month if every {role} ran at 100 % all month (surplus credits at "
                f"${spec.surplus_usd_per_vcpu_hour}/vCPU-h); prices: {source}.")
    where = "spec.cpuCredits: unlimited in the instance group (`kops edit ig`)"
    return _row("advice.burstable-standard", "warn",
                f"{count} {role}(s) on {instance_type} in standard credit mode: once the credits run out "
                f"the CPU is throttled to the {base:.0f} % baseline (the team's earlier outages). Set "
                f"{where} or use a non-burstable type such as {alt or 'm6i.large'}.{cost}", instance_type)


def advice(params: CreateParams, *, ec2: Any = None, command: str = ORIGINAL_COMMAND,
           check_generation: bool = True) -> pd.DataFrame:
    """Advice rows (status ``warn`` or ``pass``) for the planned cluster.

    Args:
        params: from :func:`opsbook.kops.params.validate`.
        ec2: EC2 client, used to spot previous-generation types (default: the configured one).
        command: a kops command line to scan for deprecated flags (default: the team's original).
        check_generation: ask EC2 about previous-generation types (skipped quietly when EC2 fails).

    Returns:
        Same columns as :func:`run_preflight`.
    """
    rows: list[Row] = []
    nodes = burstable_advice(params.node_size, params.node_count, params.region, params.node_cpu_credits,
                             "node")
    if nodes:
        rows.append(nodes)
    cp = burstable_advice(params.control_plane_size, len(params.control_plane_zones), params.region, "",
                          "control-plane node")
    if cp:
        rows.append(cp)
    if len(params.control_plane_zones) == 1:
        z = params.zones[:3]
        rows.append(_row("advice.single-control-plane", "warn",
                         f"one control-plane node in {params.control_plane_zones[0]}: no HA. Losing that "
                         "instance or zone stops the API and the controllers (the team's control-plane "
                         "restart outage). "
                         f"Use three: --control-plane-zones {','.join(z)}" if len(z) == 3 else
                         f"one control-plane node in {params.control_plane_zones[0]}: no HA; use three zones",
                         params.control_plane_zones[0]))
    if check_generation:
        try:
            info = describe_instance_types(params.instance_types, params.region,
                                           ec2 or aws_client("ec2", params.region))
        except AwsError as e:
            log.info("previous-generation check skipped: %s", e)
            info = {}
        for t, d in info.items():
            if d.get("CurrentGeneration") is False:
                rows.append(_row("advice.previous-generation", "warn",
                                 f"{t} is a previous-generation type ({d['VCpuInfo']['DefaultVCpus']} vCPU, "
                                 f"{d['MemoryInfo']['SizeInMiB'] / 1024:.2f} GiB): slower and often dearer "
                                 "than its successors; for the control plane kops suggests at least 2 vCPU "
                                 "and 4 GiB, e.g. t3.medium (unlimited) or m6i.large", t, severity="low"))
    if params.bastion and not params.ssh_public_key:
        rows.append(_row("advice.bastion-without-key", "warn",
                         "bastion requested without ssh_public_key: nobody can log in through it. Give a "
                         "key or drop the bastion and use SSM Session Manager", "bastions"))
    _, used = modernize_flags(command)
    if used:
        rows.append(_row("advice.deprecated-flags", "warn",
                         "deprecated flags in the original command, replaced in the plan: "
                         + ", ".join(f"{o} → {n}" for o, n in used.items())
                         + " (kops 1.28+ warns; later releases remove them)", "kops create cluster",
                         severity="low"))
    for note in params.notes:
        rows.append(_row("advice.parameters", "warn", note, "", severity="low"))
    return pd.DataFrame(rows, columns=COLUMNS)
