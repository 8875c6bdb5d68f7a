"""Pure analysis for the upgrade-cluster runbook: versions, APIs, drains, capacity, plan, availability.

Nothing here talks to a cluster: inputs are plain Kubernetes objects (the JSON the API server
returns, as dicts) or DataFrames; outputs are DataFrames and :class:`~opsbook.report.Finding` lists.

Version rules (Kubernetes version-skew policy, kops upgrade docs): the control plane moves one
minor at a time and first; kubelets are never newer than the API server and at most three minors
older (1.28+); kops ``X.Y`` supports Kubernetes up to ``X.Y``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from opsbook.data.tables import removed_apis
from opsbook.errors import BadInput
from opsbook.k8s.objects import is_mirror_pod, selector_matches
from opsbook.report import Finding, object_id

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBELET_MAX_MINORS_BEHIND = 3
# kops' own oldest supported Kubernetes version (upup/pkg/fi/cloudup/apply_cluster.go, kops 1.31-1.33):
KOPS_OLDEST_SUPPORTED = "1.25.0"
GROUP = "upgrade"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


@dataclass(frozen=True, order=True)
class Version:
    """A Kubernetes version ``major.minor.patch`` (comparable)."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``1.33``, ``1.33.1``, ``v1.33.1`` or ``v1.33.1-eks.2``.

        Raises:
            BadInput: not a version.
        """
        m = _VERSION.match(str(text).strip())
        if not m:
            raise BadInput(f"{text!r} is not a Kubernetes version such as 1.34.4")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))

    @property
    def minor_key(self) -> tuple[int, int]:
        """``(major, minor)``."""
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


# -- parameters -------------------------------------------------------------------------------------


def check_target(target: str, control_plane: str, kubelets: Sequence[str], instance_groups: Sequence[str],
                 known_groups: Sequence[str]) -> Version:
    """Refuse a target that cannot be reached in one safe step, and unknown instance groups.

    Args:
        target: the requested Kubernetes version.
        control_plane: the control plane's current version.
        kubelets: every kubelet's version (``v1.33.1``).
        instance_groups: the groups the caller asked for (empty: all).
        known_groups: the cluster's instance groups.

    Returns:
        The target version.

    Raises:
        BadInput: every problem at once, each with what to do instead.
    """
    problems: list[str] = []
    cp = Version.parse(control_plane)
    try:
        t = Version.parse(target)
    except BadInput as e:
        problems.append(f"target_version: {e}")
        t = cp
    oldest_kubelet = min((Version.parse(k) for k in kubelets), default=cp)
    if t < cp:
        problems.append(f"target_version {t} is older than the cluster's control plane ({cp}): kops does "
                        "not downgrade. Give a version >= the current one.")
    if t.minor_key > (cp.major, cp.minor + 1):
        problems.append(f"target_version {t} is {t.minor - cp.minor} minors ahead of the control plane "
                        f"({cp}): upgrade one minor at a time, first to {cp.major}.{cp.minor + 1}.x, "
                        "validate, then again.")
    if t.minor_key > (oldest_kubelet.major, oldest_kubelet.minor + KUBELET_MAX_MINORS_BEHIND):
        problems.append(f"the oldest kubelet ({oldest_kubelet}) would be more than "
                        f"{KUBELET_MAX_MINORS_BEHIND} minors behind {t}: roll the nodes at the current "
                        "version first.")
    unknown = [g for g in instance_groups if g not in known_groups]
    if unknown:
        problems.append(f"instance_groups: no instance group {', '.join(repr(g) for g in unknown)} in this "
                        f"cluster; it has {', '.join(known_groups) or 'none'}.")
    if problems:
        raise BadInput(" ".join(problems))
    return t


def channel_recommendation(channel: Mapping[str, Any], kops_version: str) -> str:
    """The Kubernetes version a kops channel recommends for this kops version ("" if none).

    Args:
        channel: the parsed channel file (``spec.kopsVersions[].range / kubernetesVersion``).
        kops_version: e.g. ``v1.33.1``.
    """
    kv = Version.parse(kops_version)
    for entry in (channel.get("spec") or {}).get("kopsVersions") or []:
        lo = re.match(r"^>=\s*(\S+)", str(entry.get("range", "")))
        if lo and Version.parse(lo.group(1)) <= kv and entry.get("kubernetesVersion"):
            return str(entry["kubernetesVersion"]).lstrip("v")
    return ""


# -- preflight: versions ----------------------------------------------------------------------------


def version_skew(target: Version, control_plane: str, nodes: pd.DataFrame, kops_version: str = "",
                 provider: str = "kops") -> list[Finding]:
    """Findings for the version skew before and after the upgrade.

    Args:
        target: the target version.
        control_plane: the control plane's current version.
        nodes: columns ``name, instance_group, role, kubelet_version``.
        kops_version: the kops binary's version ("" when kops is not built).
        provider: ``kops`` (a kops range problem blocks apply) or ``sandbox`` (only noted).
    """
    cp = Version.parse(control_plane)
    out: list[Finding] = []
    newer = [r for r in nodes.itertuples() if Version.parse(r.kubelet_version) > cp]
    for r in newer:
        out.append(Finding("upgrade.skew.kubelet-newer", "high",
                           f"kubelet {r.kubelet_version} on {r.name} is newer than the control plane ({cp}): "
                           "the skew policy forbids it. Upgrade the control plane first.",
                           object=object_id("Node", r.name), group=GROUP))
    too_old = [r for r in nodes.itertuples()
               if (cp.minor - Version.parse(r.kubelet_version).minor) > KUBELET_MAX_MINORS_BEHIND]
    for r in too_old:
        out.append(Finding("upgrade.skew.kubelet-too-old", "high",
                           f"kubelet {r.kubelet_version} on {r.name} is more than {KUBELET_MAX_MINORS_BEHIND} "
                           f"minors behind the control plane ({cp}). Replace the node before upgrading.",
                           object=object_id("Node", r.name), group=GROUP))
    behind = nodes[[Version.parse(v) < target for v in nodes["kubelet_version"]]] if len(nodes) else nodes
    out.append(Finding("upgrade.skew.plan", "info",
                       f"control plane {cp} -> {target}, then {len(behind)} of {len(nodes)} nodes "
                       f"(kubelets {', '.join(sorted(set(nodes['kubelet_version'])))}) one by one; "
                       "control plane first, kubelets never newer than the API server.",
                       group=GROUP, data={"nodes_behind": len(behind)}))
    if kops_version:
        kv = Version.parse(kops_version)
        lo = Version.parse(KOPS_OLDEST_SUPPORTED)
        if target.minor_key > kv.minor_key or target < lo:
            sev = "high" if provider == "kops" else "medium"
            out.append(Finding("upgrade.skew.kops-range", sev,
                               f"kops {kops_version} supports Kubernetes {lo} to {kv.major}.{kv.minor}.x, not "
                               f"{target}: build a kops >= {target.major}.{target.minor} first "
                               "(opsbook toolchain pins the kops version).",
                               group=GROUP, data={"kops": kops_version, "supported_max": f"{kv.major}.{kv.minor}"}))
        else:
            out.append(Finding("upgrade.skew.kops-range", "info",
                               f"kops {kops_version} supports {target}.", group=GROUP))
    else:
        out.append(Finding("upgrade.skew.kops-range", "low",
                           "kops is not built, its supported range was not checked: run `opsbook toolchain --kops`.",
                           group=GROUP))
    return out


# -- preflight: removed and deprecated APIs ---------------------------------------------------------


def _minor(v: str) -> tuple[int, int]:
    return Version.parse(v).minor_key


def last_applied_versions(objects: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """What each stored object was last applied as (its ``last-applied-configuration``).

    Args:
        objects: API objects as dicts (any kind).

    Returns:
        Columns ``object, served_as, applied_as, kind`` (only objects that carry the annotation).
    """
    rows = []
    for o in objects:
        meta = o.get("metadata") or {}
        raw = (meta.get("annotations") or {}).get(LAST_APPLIED)
        if not raw:
            continue
        try:
            applied = json.loads(raw)
        except ValueError:
            continue
        kind = str(applied.get("kind") or o.get("kind") or "")
        ns = meta.get("namespace")
        name = object_id(kind, str(meta.get("name")), ns or "")
        rows.append({"object": name, "served_as": str(o.get("apiVersion", "")),
                     "applied_as": str(applied.get("apiVersion", "")), "kind": kind})
    return pd.DataFrame(rows, columns=["object", "served_as", "applied_as", "kind"])


def api_findings(target: Version, applied: pd.DataFrame, requested: pd.DataFrame,
                 table: pd.DataFrame | None = None) -> list[Finding]:
    """Removed or deprecated APIs still in use: in manifests (last-applied) or by clients (metric).

    Args:
        target: the target version.
        applied: from :func:`last_applied_versions`.
        requested: the ``apiserver_requested_deprecated_apis`` series: columns ``group, version,
            resource, removed_release``.
        table: the removed-API table (default :func:`opsbook.data.tables.removed_apis`).
    """
    t = removed_apis() if table is None else table
    out: list[Finding] = []
    for r in applied.itertuples():
        hit = t[(t["group_version"] == r.applied_as) & (t["kind"] == r.kind)]
        if hit.empty:
            continue
        h = hit.iloc[0]
        removed = _minor(h["removed_in"]) <= target.minor_key
        repl = (f"use {h['replacement']}" if h["replacement"] else h["note"])
        out.append(Finding(
            "upgrade.api.removed" if removed else "upgrade.api.deprecated",
            "high" if removed else "low",
            f"{r.object} was last applied as {r.applied_as} {r.kind}, "
            f"{'removed' if removed else 'deprecated, removed'} in Kubernetes {h['removed_in']}: {repl}. "
            f"Update the manifest in your repository to {h['replacement'] or 'the replacement'} and re-apply "
            "it; the next `kubectl apply` of the old file fails after the upgrade.",
            object=r.object, group=GROUP, evidence=f"metadata.annotations[{LAST_APPLIED}]",
            data={"applied_as": r.applied_as, "replacement": h["replacement"], "removed_in": h["removed_in"]}))
    for r in requested.itertuples():
        gv = f"{r.group}/{r.version}" if r.group else str(r.version)
        rel = str(r.removed_release or "")
        hit = t[t["group_version"] == gv]
        repl = hit.iloc[0]["replacement"] if not hit.empty else ""
        removed = bool(rel) and _minor(rel) <= target.minor_key
        out.append(Finding(
            "upgrade.api.requested-removed" if removed else "upgrade.api.requested-deprecated",
            "high" if removed else "low",
            f"clients still call {gv} {r.resource}"
            f"{f' (removed in {rel})' if rel else ''}: find them in the audit log or with "
            f"`kubectl get --raw /metrics | grep apiserver_requested_deprecated_apis` and move them to "
            f"{repl or 'the replacement API'}.",
            object=f"{gv}/{r.resource}", group=GROUP, evidence="apiserver_requested_deprecated_apis",
            data={"replacement": repl, "removed_release": rel}))
    return out


def parse_deprecated_metric(text: str) -> pd.DataFrame:
    """The ``apiserver_requested_deprecated_apis`` series of a /metrics page.

    Returns:
        Columns ``group, version, resource, subresource, removed_release`` (series with value 1).
    """
    rows = []
    for line in text.splitlines():
        if not line.startswith("apiserver_requested_deprecated_apis{"):
            continue
        labels_text, _, value = line.partition("} ")
        if value.strip() not in ("1", "1.0"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
        rows.append({k: labels.get(k, "") for k in ("group", "version", "resource", "subresource",
                                                   "removed_release")})
    return pd.DataFrame(rows, columns=["group", "version", "resource", "subresource", "removed_release"])


# -- preflight: what blocks or hurts a drain --------------------------------------------------------


def _ref(o: Mapping[str, Any], kind: str) -> str:
    m = o.get("metadata") or {}
    return object_id(kind, str(m.get("name")), str(m.get("namespace") or ""))


def _labels(o: Mapping[str, Any]) -> dict[str, str]:
    return dict((o.get("metadata") or {}).get("labels") or {})


def _owner_kind(p: Mapping[str, Any]) -> str:
    owners = (p.get("metadata") or {}).get("ownerReferences") or []
    return str(owners[0].get("kind", "")) if owners else ""


def drain_blockers(pdbs: Sequence[Mapping[str, Any]], workloads: Sequence[Mapping[str, Any]],
                   pods: Sequence[Mapping[str, Any]], daemonsets: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """What would block or hurt ``kubectl drain`` of any node.

    Args:
        pdbs: PodDisruptionBudgets (policy/v1 dicts with status).
        workloads: Deployments and StatefulSets (dicts with ``kind``).
        pods: every pod.
        daemonsets: every DaemonSet.
    """
    out: list[Finding] = []
    for b in pdbs:
        st = b.get("status") or {}
        if int(st.get("disruptionsAllowed", 0)) == 0 and int(st.get("expectedPods", 0)) > 0:
            spec = b.get("spec") or {}
            rule = (f"minAvailable={spec['minAvailable']}" if "minAvailable" in spec
                    else f"maxUnavailable={spec.get('maxUnavailable')}")
            out.append(Finding("upgrade.drain.pdb-blocks", "high",
                               f"PDB {_ref(b, 'pdb').split('/', 1)[1]} ({rule}, {st.get('currentHealthy', 0)} of "
                               f"{st.get('expectedPods', 0)} healthy) allows 0 disruptions: draining a node that "
                               "runs its pods blocks until the drain times out. Scale the workload up or relax "
                               "the PDB before the upgrade.",
                               object=_ref(b, "pdb"), group=GROUP,
                               data={"disruptions_allowed": 0, "expected_pods": st.get("expectedPods", 0)}))
    for w in workloads:
        replicas = int((w.get("spec") or {}).get("replicas", 1) or 0)
        tmpl = _labels((w.get("spec") or {}).get("template") or {})
        covered = any(selector_matches((b.get("spec") or {}).get("selector"), tmpl) for b in pdbs
                      if (b.get("metadata") or {}).get("namespace") == (w.get("metadata") or {}).get("namespace"))
        if replicas == 1 and not covered:
            out.append(Finding("upgrade.drain.single-replica", "medium",
                               f"{_ref(w, str(w.get('kind', 'Deployment')).lower())} has 1 replica and no PDB: it "
                               "is down from eviction until its replacement is Ready on another node. Scale to 2 "
                               "with a PDB (minAvailable: 1), or accept and announce the downtime.",
                               object=_ref(w, str(w.get("kind", "Deployment")).lower()), group=GROUP))
    for p in pods:
        if is_mirror_pod(p) or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if not _owner_kind(p):
            out.append(Finding("upgrade.drain.bare-pod", "high",
                               f"{_ref(p, 'pod')} has no controller: drain refuses it, and deleting it loses it "
                               "for good. Recreate it as a Deployment, or delete it by hand first.",
                               object=_ref(p, "pod"), group=GROUP))
        vols = (p.get("spec") or {}).get("volumes") or []
        local = [v["name"] for v in vols if "emptyDir" in v or "hostPath" in v]
        if local and _owner_kind(p) != "DaemonSet":
            out.append(Finding("upgrade.drain.local-storage", "low",
                               f"{_ref(p, 'pod')} keeps data in emptyDir/hostPath ({', '.join(local)}): it is lost "
                               "when the pod is evicted. Make sure it is only a cache.",
                               object=_ref(p, "pod"), group=GROUP))
    for d in daemonsets:
        out.append(Finding("upgrade.drain.daemonset", "info",
                           f"{_ref(d, 'daemonset')}: drain leaves DaemonSet pods in place; they go with the node "
                           "and start on the replacement.", object=_ref(d, "daemonset"), group=GROUP))
    return out


# -- preflight: spare capacity per zone ------------------------------------------------------------


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9, "k": 1e3, "m": 1e-3}


def quantity(q: str | int | float | None) -> float:
    """A Kubernetes quantity as a float (``100m`` -> 0.1, ``128Mi`` -> 134217728)."""
    if q is None or q == "":
        return 0.0
    s = str(q)
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * _UNITS[suffix]
    return float(s)


def node_load(nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per node: zone, allocatable and requested CPU/memory (pods on it that are not finished).

    Returns:
        Columns ``node, zone, role, schedulable, cpu_alloc, mem_alloc, cpu_req, mem_req, movable_cpu,
        movable_mem`` (movable = requests of pods a drain would move: not DaemonSet, not mirror).
    """
    rows: dict[str, dict[str, Any]] = {}
    for n in nodes:
        m, st = n.get("metadata") or {}, n.get("status") or {}
        labels = m.get("labels") or {}
        alloc = st.get("allocatable") or {}
        rows[m["name"]] = {
            "node": m["name"], "zone": labels.get("topology.kubernetes.io/zone", ""),
            "role": "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "node",
            "schedulable": not (n.get("spec") or {}).get("unschedulable", False),
            "cpu_alloc": quantity(alloc.get("cpu")), "mem_alloc": quantity(alloc.get("memory")),
            "cpu_req": 0.0, "mem_req": 0.0, "movable_cpu": 0.0, "movable_mem": 0.0}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node not in rows or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        cpu = mem = 0.0
        for c in (p.get("spec") or {}).get("containers") or []:
            req = (c.get("resources") or {}).get("requests") or {}
            cpu += quantity(req.get("cpu"))
            mem += quantity(req.get("memory"))
        r = rows[node]
        r["cpu_req"] += cpu
        r["mem_req"] += mem
        if not is_mirror_pod(p) and _owner_kind(p) != "DaemonSet":
            r["movable_cpu"] += cpu
            r["movable_mem"] += mem
    return pd.DataFrame(list(rows.values()), columns=["node", "zone", "role", "schedulable", "cpu_alloc",
                                                      "mem_alloc", "cpu_req", "mem_req", "movable_cpu",
                                                      "movable_mem"])


def spare_capacity(load: pd.DataFrame, max_surge: int = 1) -> tuple[pd.DataFrame, list[Finding]]:
    """Per zone: can the other workers take the busiest worker's pods?

    Args:
        load: from :func:`node_load`.
        max_surge: with a surge node the replacement joins before the drain (kops' default on AWS),
            so a shortfall is only ``medium``.

    Returns:
        ``(table, findings)``; table columns ``zone, workers, busiest, need_cpu, need_mem, spare_cpu,
        spare_mem, fits``.
    """
    workers = load[load["role"] == "node"]
    rows, out = [], []
    for zone, g in workers.groupby("zone", sort=True):
        busiest = g.sort_values(["movable_cpu", "movable_mem"], ascending=False).iloc[0]
        others = g[(g["node"] != busiest["node"]) & g["schedulable"]]
        other_zones = workers[(workers["zone"] != zone) & workers["schedulable"]]
        spare_cpu = float((others["cpu_alloc"] - others["cpu_req"]).clip(lower=0).sum())
        spare_mem = float((others["mem_alloc"] - others["mem_req"]).clip(lower=0).sum())
        anywhere_cpu = spare_cpu + float((other_zones["cpu_alloc"] - other_zones["cpu_req"]).clip(lower=0).sum())
        anywhere_mem = spare_mem + float((other_zones["mem_alloc"] - other_zones["mem_req"]).clip(lower=0).sum())
        fits = spare_cpu >= busiest["movable_cpu"] and spare_mem >= busiest["movable_mem"]
        fits_anywhere = anywhere_cpu >= busiest["movable_cpu"] and anywhere_mem >= busiest["movable_mem"]
        rows.append({"zone": zone, "workers": len(g), "busiest": busiest["node"],
                     "need_cpu": round(float(busiest["movable_cpu"]), 3),
                     "need_mem": float(busiest["movable_mem"]), "spare_cpu": round(spare_cpu, 3),
                     "spare_mem": spare_mem, "fits": bool(fits)})
        if not fits:
            sev = "low" if fits_anywhere and max_surge > 0 else ("medium" if fits_anywhere or max_surge > 0
                                                                  else "high")
            out.append(Finding(
                "upgrade.capacity.zone", sev,
                f"zone {zone}: the other workers have {spare_cpu:.2f} CPU / {spare_mem / 2**30:.1f} GiB spare, "
                f"node {busiest['node']}'s pods need {busiest['movable_cpu']:.2f} CPU / "
                f"{busiest['movable_mem'] / 2**30:.1f} GiB: zone-bound pods wait for the replacement node"
                f"{' (max_surge brings it up before the drain)' if max_surge > 0 else ''}"
                f"{'; other zones can take the rest' if fits_anywhere else '; the cluster as a whole cannot'}. "
                "Add a node in the zone or keep max_surge >= 1.",
                object=object_id("Zone", zone), group=GROUP))
    table = pd.DataFrame(rows, columns=["zone", "workers", "busiest", "need_cpu", "need_mem", "spare_cpu",
                                        "spare_mem", "fits"])
    return table, out


# -- plan -------------------------------------------------------------------------------------------


def nodes_to_replace(nodes: pd.DataFrame, target: Version, instance_groups: Sequence[str] = ()) -> pd.DataFrame:
    """The nodes whose kubelet is older than the target, control plane first, then by group and name.

    Args:
        nodes: columns ``name, instance_group, role, zone, kubelet_version, unschedulable``.
        target: the target version.
        instance_groups: limit to these groups (empty: all).

    Returns:
        The rows to replace, in order, with an ``order`` column (1-based).
    """
    df = nodes.copy()
    if instance_groups:
        df = df[df["instance_group"].isin(list(instance_groups))]
    df = df[[Version.parse(v) < target for v in df["kubelet_version"]]] if len(df) else df
    df = df.assign(_cp=(df["role"] != "control-plane").astype(int)).sort_values(["_cp", "instance_group", "name"])
    df = df.drop(columns=["_cp"]).reset_index(drop=True)
    df.insert(0, "order", range(1, len(df) + 1))
    return df


@dataclass(frozen=True)
class Estimate:
    """How long the rolling update should take."""

    nodes: int
    drain_s: float
    boot_s: float
    validate_s: float

    @property
    def total_s(self) -> float:
        """Nodes x (drain + boot + validation)."""
        return self.nodes * (self.drain_s + self.boot_s + self.validate_s)

    def line(self) -> str:
        """One sentence."""
        return (f"{self.nodes} nodes x ({self.drain_s:.0f}s drain + {self.boot_s:.0f}s boot + "
                f"{self.validate_s:.0f}s validation) = {self.total_s / 60:.1f} min")


# Per-node assumptions on AWS (kops rolling-update: instance boot + nodeup + kubelet join, then
# validation passes twice 30 s apart by default); the sandbox's kwok nodes join in about a second.
AWS_BOOT_S, AWS_VALIDATE_S = 240.0, 60.0
SANDBOX_BOOT_S, SANDBOX_VALIDATE_S = 2.0, 2.0


def estimate(n_nodes: int, pods_per_node: float, provider: str, drain_timeout: float) -> Estimate:
    """The duration estimate: drain ~ 5 s per pod (capped by ``drain_timeout``), boot, validation."""
    drain = min(float(drain_timeout), 5.0 * pods_per_node + 5.0)
    if provider == "sandbox":
        return Estimate(n_nodes, min(drain, 2.0 + 0.5 * pods_per_node), SANDBOX_BOOT_S, SANDBOX_VALIDATE_S)
    return Estimate(n_nodes, drain, AWS_BOOT_S, AWS_VALIDATE_S)


# -- availability ----------------------------------------------------------------------------------

def availability(samples: pd.DataFrame, budgets: pd.DataFrame) -> pd.DataFrame:
    """Per workload: the minimum ready count seen, against its PDB and replicas, and its downtime.

    Args:
        samples: columns ``t`` (seconds since start), ``workload`` (``deployment/ns/name``), ``kind``,
            ``replicas``, ``ready`` (ready pods not being deleted), ``endpoints`` (ready endpoints of the
            services selecting it, NaN when none).
        budgets: columns ``workload, pdb, min_ready`` (the ready count the PDB guarantees).

    Returns:
        Columns ``workload, replicas, min_ready, pdb, pdb_min_ready, below_pdb, zero_ready_s,
        min_endpoints, samples`` sorted by workload (``min_endpoints`` NaN without a service).
        ``zero_ready_s`` sums the intervals that start at a sample with 0 ready pods (up to the next
        sample).
    """
    cols = ["workload", "replicas", "min_ready", "pdb", "pdb_min_ready", "below_pdb", "zero_ready_s",
            "min_endpoints", "samples"]
    if samples.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    b = budgets.set_index("workload") if len(budgets) else pd.DataFrame(columns=["pdb", "min_ready"])
    for wl, g in samples.sort_values("t", kind="stable").groupby("workload", sort=True):
        t = g["t"].to_numpy(dtype=float)
        ready = g["ready"].to_numpy(dtype=int)
        gaps = [t[i + 1] - t[i] for i in range(len(t) - 1)]
        zero = sum(gap for gap, r in zip(gaps, ready[:-1], strict=True) if r == 0)
        pdb = str(b.loc[wl, "pdb"]) if wl in b.index else ""
        pmin = int(b.loc[wl, "min_ready"]) if wl in b.index else None
        rows.append({"workload": wl, "replicas": int(g["replicas"].max()), "min_ready": int(ready.min()),
                     "pdb": pdb, "pdb_min_ready": pmin,
                     "below_pdb": bool(pmin is not None and ready.min() < pmin),
                     "zero_ready_s": round(float(zero), 3),
                     "min_endpoints": float(g["endpoints"].min()) if g["endpoints"].notna().any() else None,
                     "samples": len(g)})
    return pd.DataFrame(rows, columns=cols)


def _secs(s: float) -> str:
    """A downtime as people read it: ``3.2s``, or ``4 ms`` when below a tenth of a second."""
    return f"{s:.1f}s" if s >= 0.1 else f"{s * 1000:.0f} ms"


def downtime_findings(avail: pd.DataFrame) -> list[Finding]:
    """Zero downtime as a finding, and the downtime of each workload that had some.

    It fails when a workload of >= 2 replicas had none ready, or went below its PDB; single-replica
    downtime is reported with its length.
    """
    out: list[Finding] = []
    for r in avail.itertuples():
        if r.replicas >= 2 and r.min_ready == 0:
            out.append(Finding("upgrade.availability.down", "high",
                               f"{r.workload} ({r.replicas} replicas) had no ready pod for {_secs(r.zero_ready_s)} "
                               "during the upgrade: spread its pods (topologySpreadConstraints) and add a PDB.",
                               object=r.workload, group=GROUP, data={"zero_ready_s": r.zero_ready_s}))
        elif r.below_pdb:
            out.append(Finding("upgrade.availability.below-pdb", "high",
                               f"{r.workload} dropped to {r.min_ready} ready pods, below its PDB {r.pdb} "
                               f"({r.pdb_min_ready}): something deleted pods without the Eviction API.",
                               object=r.workload, group=GROUP))
        elif r.replicas == 1 and r.min_ready == 0:
            out.append(Finding("upgrade.availability.single-replica-down", "medium",
                               f"{r.workload} (1 replica) was down for {_secs(r.zero_ready_s)} while its node was "
                               "drained: expected for a single replica; scale to 2 with a PDB to avoid it.",
                               object=r.workload, group=GROUP, data={"zero_ready_s": r.zero_ready_s}))
    multi = avail[avail["replicas"] >= 2] if len(avail) else avail
    bad = [f for f in out if f.check in ("upgrade.availability.down", "upgrade.availability.below-pdb")]
    if len(avail) and not bad:
        out.append(Finding("upgrade.availability.zero-downtime", "info",
                           f"zero downtime for the {len(multi)} workloads with >= 2 replicas: none went to 0 "
                           "ready pods or below its PDB.", group=GROUP, data={"workloads": len(multi)}))
    return out
