"""The validate-cluster runbook's façade: collect the cluster (Kubernetes and its AWS side), then evaluate.

``notebooks/validate-cluster.ipynb`` makes one call, :func:`validate_cluster`. Collection
(:class:`Sources`, :func:`collect`) reads the API server (:mod:`opsbook.k8s.inventory`), the Auto
Scaling groups, instances and state store (:mod:`opsbook.aws.asg`) and the API server's TLS
certificate (:mod:`opsbook.k8s.certs`); the checks themselves are pure
(:mod:`opsbook.analysis.validate`), and so is the ``--wait``/``--count`` loop
(:func:`opsbook.analysis.validate.validate_until`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from kubernetes import client as k8s

from opsbook.analysis import kops_parity as kp
from opsbook.analysis.validate import Inputs, Options, ValidationRun, evaluate, validate_findings, validate_until
from opsbook.aws import asg as asgmod
from opsbook.aws.s3url import is_s3, parse_s3
from opsbook.aws.session import boundary, session
from opsbook.errors import AwsError, BadInput
from opsbook.k8s import inventory
from opsbook.k8s.certs import apiserver_certificate
from opsbook.k8s.client import api_client
from opsbook.plots.validate import node_readiness, pods_by_phase, run_score

__all__ = ["Sources", "aws_clients", "collect", "node_readiness", "pods_by_phase", "resolve", "run_score",
           "validate_cluster", "validate_findings"]


@dataclass
class Sources:
    """Where to look: the cluster, and optionally its AWS side.

    Attributes:
        api: Kubernetes ApiClient (default: the configured cluster).
        cluster: kops cluster name (default ``$KOPS_CLUSTER_NAME``); empty = no AWS side.
        region: AWS region (default: the environment's).
        state_store: ``s3://...`` kops state store: the instance groups kops validates (empty:
            ``$KOPS_STATE_STORE``, else the ASGs' tags).
        asg, ec2, s3: boto3 clients (default: new ones).
        limit: page size of the list calls.
    """

    api: k8s.ApiClient | None = None
    cluster: str = ""
    region: str = ""
    state_store: str = ""
    asg: Any = None
    ec2: Any = None
    s3: Any = None
    limit: int = inventory.DEFAULT_LIMIT


def aws_clients(src: Sources) -> None:
    """Create the missing boto3 clients of ``src`` once, from one session (they are reused per attempt).

    Raises:
        AwsError: no region or credentials are configured.
    """
    with boundary("create AWS clients"):
        sess = session(src.region or None)
        src.asg = src.asg or sess.client("autoscaling")
        src.ec2 = src.ec2 or sess.client("ec2")
        src.s3 = src.s3 or sess.client("s3")


def collect(src: Sources) -> Inputs:
    """Take a snapshot of the cluster and read its AWS side (read-only).

    AWS, the state store and the TLS handshake degrade to a note when unavailable; the
    instance-group targets then fall back to ASG desired capacity, then node labels.

    Raises:
        ClusterUnreachable: the API server does not answer.
    """
    snap = inventory.snapshot(src.api, limit=src.limit)
    notes: dict[str, str] = {}
    calls = asgmod.Calls()
    cluster = src.cluster or os.environ.get("KOPS_CLUSTER_NAME", "")
    region = src.region or None
    if cluster:
        try:
            aws_clients(src)
        except AwsError as e:
            notes["kops.instancegroup.size"] = f"AWS unavailable ({e}); instance groups not checked"
            notes["kops.instance.joined"] = f"skipped: AWS unavailable ({e})"
            cluster = ""
    igs: pd.DataFrame | None = None
    cloud: asgmod.KopsCloud | None = None
    if cluster:
        try:
            cloud = asgmod.kops_cloud(cluster, region, src.asg, src.ec2, calls)
            for why in cloud.notes:
                notes.setdefault("kops.instance.joined", why)
        except AwsError as e:
            notes["kops.instancegroup.size"] = f"ASGs/instances unreadable ({e}); instance groups not checked"
            notes["kops.instance.joined"] = f"skipped: ASGs/instances unreadable ({e})"
    store = src.state_store or os.environ.get("KOPS_STATE_STORE", "")  # where kops itself looks
    if cloud is not None and is_s3(store):
        try:
            igs = asgmod.state_store_instance_groups(store, cluster, region, src.s3, calls)
            if igs.empty:
                notes["kops.instancegroup.missing"] = (f"no instance groups of {cluster} in {store}; "
                                                       "instance groups from the ASGs' tags instead")
                igs = None
        except AwsError as e:
            notes["kops.instancegroup.missing"] = (f"state store unreadable ({e}); instance groups from the "
                                                   "ASGs' tags instead")
    if cloud is not None and igs is None:
        notes.setdefault("kops.instancegroup.missing", "no state store given: instance groups from the ASGs' "
                         "tags, so a group whose ASG is gone cannot be seen (set state_store)")
        a = cloud.asgs[cloud.asgs["instance_group"] != ""]
        igs = pd.DataFrame({"instance_group": a["instance_group"], "role": a["role"], "min_size": a["min_size"],
                            "max_size": a["max_size"], "asg": a["asg"]}, columns=asgmod.IG_COLUMNS)
    if not cluster:
        notes.setdefault("kops.instance.joined",
                         "skipped: no cluster name (set cluster_name or $KOPS_CLUSTER_NAME)")
    if cloud is not None and igs is not None:
        live = cloud.asgs.set_index("asg")
        targets = pd.DataFrame(
            [{"instance_group": r.instance_group, "target": int(live.loc[r.asg, "desired"]),
              "min_size": int(live.loc[r.asg, "min_size"]), "max_size": int(live.loc[r.asg, "max_size"]),
              "source": "asg", "asg": r.asg} for r in igs.itertuples(index=False) if r.asg in live.index],
            columns=asgmod.TARGET_COLUMNS)
    else:
        targets = asgmod.label_targets(snap.nodes)
        notes.setdefault("kops.instancegroup.size", "targets from node labels (no ASG read)")
    api_addresses = None
    if cluster and not kp.is_gossip(cluster):
        api_addresses = resolve(urlparse(snap.server).hostname or "")
    try:
        api_certs = apiserver_certificate(snap.server)
    except (OSError, ValueError) as e:
        api_certs = pd.DataFrame(columns=inventory.CERT_COLUMNS)
        notes["certs.apiserver"] = f"skipped: TLS handshake with {snap.server} failed ({e})"
    return Inputs(snapshot=snap, targets=targets, instances=cloud.instances if cloud else None,
                  apiserver_certs=api_certs, notes=notes, aws_calls=calls.count, igs=igs, cloud=cloud,
                  api_addresses=api_addresses)


def resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to ([] when it does not resolve or is an IP)."""
    if not host:
        return []
    try:
        return sorted({str(ai[4][0]) for ai in socket.getaddrinfo(host, None)})
    except OSError:
        return []


def validate_cluster(cluster_name: str = "", region: str = "", state_store: str = "", *, wait: int = 0,
                     count: int = 1, interval: int = 10, max_unready_nodes: int = 0, cert_days: int = 30,
                     restart_threshold: int = 5, pending_grace: int = 120, fail_on: str = "high",
                     exclude: list[str] | tuple[str, ...] | str = (), api: k8s.ApiClient | None = None,
                     asg: Any = None, ec2: Any = None, s3: Any = None,
                     say: Callable[[str], None] | None = None) -> ValidationRun:
    """Validate the cluster (the notebook's one call): collect, evaluate, repeat per wait/count.

    Args:
        cluster_name: kops cluster name (default ``$KOPS_CLUSTER_NAME``).
        region: AWS region (default: the environment's).
        state_store: ``s3://`` kops state store listing the instance groups ("" = ``$KOPS_STATE_STORE``,
            else the ASGs' tags; targets are always the ASGs' desired capacity, as in kops).
        wait: seconds to keep validating until it passes (0 = once).
        count: consecutive passes required.
        interval: seconds between attempts.
        max_unready_nodes: worker nodes allowed to be NotReady.
        cert_days: report certificates expiring within this many days.
        restart_threshold: report pods restarted this often.
        pending_grace: seconds a pod may be Pending before it is reported.
        fail_on: lowest severity outside the kops checks that fails the validation.
        exclude: ``namespace:<glob>``, ``check:<glob>``, ``object:<glob>`` rules (a list, or one
            comma-separated string).
        api: Kubernetes ApiClient (default: the configured cluster).
        asg: boto3 ``autoscaling`` client (default: a new one).
        ec2: boto3 ``ec2`` client (default: a new one).
        s3: boto3 ``s3`` client (default: a new one).
        say: progress callback.

    Raises:
        BadInput: a parameter is invalid (nothing was called).
    """
    if isinstance(exclude, str):  # e.g. `papermill -p exclude a,b`: the engine passes a list
        exclude = [r.strip() for r in exclude.split(",") if r.strip()]
    opts = Options(max_unready_nodes=max_unready_nodes, cert_days=cert_days,
                   restart_threshold=restart_threshold, pending_grace_s=pending_grace, fail_on=fail_on,
                   exclude=tuple(exclude))
    if state_store and parse_s3(state_store) is None:
        raise BadInput(f"state_store {state_store!r} must be an s3:// URL (e.g. s3://my-kops-state) or empty")
    own = api is None
    if own:
        api = api_client()
    src = Sources(api=api, cluster=cluster_name, region=region, state_store=state_store,
                  asg=asg, ec2=ec2, s3=s3)
    try:
        return validate_until(lambda: evaluate(collect(src), opts), wait_s=wait, count=count,
                              interval_s=interval, options=opts, say=say)
    finally:
        if own and api is not None:
            api.close()  # type: ignore[no-untyped-call]
