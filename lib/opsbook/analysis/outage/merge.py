"""Merges: one incident, one cause (``zone.outage`` for a whole zone, EC2 death into ``node.lost``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.analysis.outage.common import _finding, _fmt
from opsbook.report import object_id

ZONE_BEHAVIOUR = (
    "The node lifecycle controller (kube-controller-manager, ComputeZoneState) counts a zone as "
    "FullDisruption when none of its nodes is Ready and PartialDisruption when more than 2 are NotReady "
    "and they are at least --unhealthy-zone-threshold (0.55) of it; in a partially disrupted zone it "
    "taints/evicts at --secondary-node-eviction-rate (0.01 nodes/s), or not at all when the cluster has "
    "at most --large-cluster-size-threshold (50) nodes; a fully disrupted zone evicts at the normal "
    "--node-eviction-rate (0.1 nodes/s) unless every zone is fully disrupted, when it stops evicting "
    "everywhere (it assumes its own network is cut off)."
)


def merge_zone_outage(found: list[dict[str, Any]], instances: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Replace the ``node.lost`` findings of every node of one availability zone by one ``zone.outage``.

    A zone counts as out when it has at least two nodes (EC2 instances not terminated, named by their
    private DNS as kops names its nodes) and every one of them is lost (critical/high ``node.lost``).
    """
    if instances is None or not len(instances) or "zone" not in instances:
        return found
    live = instances[instances["state"] != "terminated"]
    zone_of = dict(zip(live["private_dns"], live["zone"], strict=False))
    size = live.groupby("zone")["private_dns"].nunique().to_dict()
    lost = [
        f for f in found
        if f["check"] == "node.lost" and f["severity"] in ("critical", "high")
        and zone_of.get(f["object"].split("/", 1)[1])
    ]
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for f in lost:
        by_zone.setdefault(zone_of[f["object"].split("/", 1)[1]], []).append(f)
    out = list(found)
    for zone, fs in by_zone.items():
        if size.get(zone, 0) < 2 or len(fs) < size[zone]:
            continue
        nodes = sorted(f["object"].split("/", 1)[1] for f in fs)
        pods = sorted({p for f in fs for p in f["data"].get("evicted_pods", [])})
        workloads: dict[str, int] = {}
        for f in fs:
            for w, k in (f["data"].get("workloads") or {}).items():
                workloads[w] = workloads.get(w, 0) + k
        t0 = min(pd.Timestamp(f["time"]) for f in fs if f["time"] is not None and not pd.isna(f["time"]))
        others = sorted(z for z in size if z != zone)
        msg = (
            f"Zone {zone} lost: all {len(nodes)} of its nodes stopped heartbeating from {_fmt(t0)} "
            f"({', '.join(nodes)}); {len(pods)} pod(s) evicted"
            + (f" ({', '.join(pods[:6])}{' …' if len(pods) > 6 else ''})" if pods else "")
            + (
                "; workloads that lost capacity: "
                + ", ".join(f"{w} ({k})" for w, k in sorted(workloads.items()))
                if workloads
                else ""
            )
            + f". Other zones: {', '.join(others) or 'none'}. {ZONE_BEHAVIOUR} Check the zone's AWS health "
            "(network, EC2 status) rather than each node; spread workloads over zones "
            "(topologySpreadConstraints)."
        )
        merged = _finding(
            "zone.outage",
            "critical",
            t0,
            object_id("Zone", zone),
            msg,
            [e for f in fs for e in f["evidence"].split("; ")][:8],
            max(f["score"] for f in fs) + 10,
            zone=zone,
            nodes=nodes,
            evicted_pods=pods,
            workloads=workloads,
            evictions=len(pods),
        )
        out = [f for f in out if f not in fs] + [merged]
    return out


def merge_ec2_death(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge an ``asg.terminated`` linked to a lost node into that ``node.lost`` (one EC2 death, one cause).

    The merged finding keeps the node as its object, begins at the earlier of the two times, and carries
    both pieces of evidence (the instance's termination and the node's loss and evictions).
    """
    by_node = {f["object"].split("/", 1)[1]: f for f in found if f["check"] == "node.lost"}
    out: list[dict[str, Any]] = []
    merged: dict[str, dict[str, Any]] = {}
    for f in found:
        node = f["data"].get("node") if f["check"] == "asg.terminated" else None
        if node and node in by_node:
            merged[node] = f
        else:
            out.append(f)
    for i, f in enumerate(out):
        if f["check"] != "node.lost":
            continue
        term = merged.get(f["object"].split("/", 1)[1])
        if term is None:
            continue
        times = [pd.Timestamp(t) for t in (f["time"], term["time"]) if t is not None and not pd.isna(t)]
        data = {**f["data"], "instance_id": term["data"]["instance_id"], "terminated": term["time"]}
        out[i] = {
            **f,
            "severity": "critical",
            "time": min(times) if times else f["time"],
            "message": f"EC2 death: instance {term['data']['instance_id']} was terminated at "
            f"{_fmt(term['time'])} and its node was lost. " + f["message"],
            "evidence": "; ".join(dict.fromkeys([*term["evidence"].split("; "), *f["evidence"].split("; ")])),
            "score": max(f["score"], term["score"]) + 5,
            "data": data,
        }
    return out


# -- all ------------------------------------------------------------------------------------------
