"""The onboarding walkthrough's façade: a map of the cluster, the runbooks, and a game day.

Everything here reads the live cluster; only :func:`game_day` changes anything, and
it refuses to run anywhere but the local sandbox. The runbooks are listed and run the way a
newcomer would run them, through the ``opsbook`` command (``opsbook list``, ``opsbook run``), so
this façade sits below the engine like every other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from kubernetes import client as k8s
from matplotlib.figure import Figure

import opsbook.plots  # noqa: F401 - Figures render as PNG in notebooks
from opsbook.errors import RunbookFailed
from opsbook.k8s import inventory
from opsbook.k8s.client import api_client
from opsbook.k8s.objects import workload_of
from opsbook.report import SEVERITY_RANK

MAP_COLUMNS = ["instance_group", "role", "instance_type", "zone", "node", "namespace", "workload", "pods"]


def cluster_map(api: k8s.ApiClient | None = None) -> pd.DataFrame:
    """Instance groups → nodes → workloads, one row per (node, workload).

    Returns:
        DataFrame with columns instance_group, role, instance_type, zone, node, namespace, workload
        (the owner's object id, e.g. ``deployment/taxi/taxi-api``), pods (count on that node).
    """
    api = api or api_client()
    nodes = inventory.nodes(api)
    pods = inventory.list_json(api, "/api/v1/pods")
    node_info = {
        n.name: {"instance_group": n.instance_group or "(none)", "role": n.role, "instance_type": n.instance_type,
                 "zone": n.zone}
        for n in nodes.itertuples()
    }
    counts: dict[tuple[str, str, str], int] = {}
    for p in pods:
        meta, node = p["metadata"], (p.get("spec") or {}).get("nodeName")
        if not node or meta.get("deletionTimestamp"):
            continue
        key = (node, meta.get("namespace", ""), workload_of(meta))
        counts[key] = counts.get(key, 0) + 1
    rows: list[dict[str, Any]] = []
    for (node, ns, workload), n in counts.items():
        rows.append(
            {
                **node_info.get(
                    node, {"instance_group": "?", "role": "?", "instance_type": "?", "zone": "?"}
                ),
                "node": node,
                "namespace": ns,
                "workload": workload,
                "pods": n,
            }
        )
    for node, info in node_info.items():
        if not any(r["node"] == node for r in rows):
            rows.append({**info, "node": node, "namespace": "", "workload": "", "pods": 0})
    return pd.DataFrame(rows, columns=MAP_COLUMNS).sort_values(
        ["instance_group", "node", "namespace", "workload"], ignore_index=True
    )


def plot_cluster_map(df: pd.DataFrame) -> Figure:
    """A picture of the map: one column per instance group, one box per node, its workloads listed."""
    groups = list(dict.fromkeys(df["instance_group"]))
    fig = Figure(figsize=(max(6.0, 3.2 * len(groups)), 5.5))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_xlim(0, len(groups))
    ax.set_ylim(0, 1)
    for gi, group in enumerate(groups):
        sub = df[df["instance_group"] == group]
        first = sub.iloc[0]
        ax.text(
            gi + 0.5,
            0.97,
            f"{group}\n{first['instance_type']} · {first['zone']}",
            ha="center",
            va="top",
            fontsize=9,
            fontweight="bold",
        )
        nodes = list(dict.fromkeys(sub["node"]))
        height = 0.8 / max(len(nodes), 1)
        for ni, node in enumerate(nodes):
            top = 0.86 - ni * height
            colour = "#fff3e0" if first["role"] == "control-plane" else "#e3f2fd"
            ax.add_patch(_box(gi + 0.05, top - height + 0.02, 0.9, height - 0.03, colour))
            wl = sub[(sub["node"] == node) & (sub["pods"] > 0)]
            lines = [f"{_short(r.workload.rsplit('/', 1)[-1])} ×{r.pods}" for r in wl.itertuples()][:7]
            more = len(wl) - len(lines)
            text = (
                _short(node.split(".")[0])
                + "\n"
                + "\n".join(lines)
                + (f"\n… +{more} more" if more > 0 else "")
            )
            ax.text(gi + 0.1, top - 0.01, text, ha="left", va="top", fontsize=7, family="monospace")
    fig.suptitle("Instance groups → nodes → workloads", fontsize=11)
    return fig


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _box(x: float, y: float, w: float, h: float, colour: str) -> Any:
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.005", facecolor=colour, edgecolor="#607d8b")


def runbook_table() -> pd.DataFrame:
    """Every runbook with what it is for and how to run it.

    Returns:
        DataFrame with columns runbook, purpose, changes_things, run_it.
    """
    rows = [
        {
            "runbook": rb["name"],
            "purpose": rb["purpose"],
            "changes_things": rb["mutates"],
            "run_it": f"opsbook run {rb['name']} --output reports/",
        }
        for rb in json.loads(_opsbook("list", "--format", "json").stdout)
    ]
    return pd.DataFrame(rows, columns=["runbook", "purpose", "changes_things", "run_it"])


def _sandbox_name(sandbox: str) -> str:
    return sandbox or os.environ.get("OPSBOOK_SANDBOX", "")


def game_day(scenario: str, sandbox: str = "") -> dict[str, Any]:
    """Trigger a drill on the sandbox (only there); return what it did and how to undo it."""
    from opsbook.sandbox import Sandbox, drills

    name = _sandbox_name(sandbox)
    if not name:
        return {
            "scenario": scenario,
            "did": ["skipped: the game day only runs on the local sandbox"],
            "undo": "",
        }
    sb = Sandbox(name)
    st = sb.state()
    if st is None:
        return {"scenario": scenario, "did": [f"skipped: sandbox {name!r} is not up"], "undo": ""}
    api = api_client(st.kubeconfig)
    result = drills.run_drill(scenario, sb, api)
    did = list(result.did)
    if scenario == "node-lost":  # the analysis sees a lost node only once its pods are evicted
        waited = drills.wait_for_evictions(api, result.details["node"])
        did.append(f"waited {waited:.0f} s for the node controller to evict its pods (grace + toleration)")
    return {"scenario": result.scenario, "did": did, "undo": result.undo}


def end_game_day(sandbox: str = "") -> list[str]:
    """Undo every drill on the sandbox."""
    from opsbook.sandbox import Sandbox, drills

    name = _sandbox_name(sandbox)
    st = Sandbox(name).state() if name else None
    if st is None:
        return ["nothing to undo"]
    return drills.reset(Sandbox(name), api_client(st.kubeconfig)) or ["nothing to undo"]


def _opsbook(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``opsbook`` command of this interpreter (the kernel's environment: same cluster, same AWS)."""
    return subprocess.run([sys.executable, "-m", "opsbook.cli", *args], capture_output=True, text=True,
                          check=False)  # fmt: skip


def run_runbook(name: str, output: str = "reports", **parameters: Any) -> pd.DataFrame:
    """Run a runbook as ``opsbook run`` does (it is that command) and return its findings, worst first.

    Returns:
        DataFrame with columns severity, check, object, message; ``attrs['report']`` is the HTML path
        and ``attrs['status']`` the run status.

    Raises:
        RunbookFailed: the run did not finish (bad input, a failed step, no cluster), with its own message.
    """
    params = [a for k, v in parameters.items() for a in ("-p", f"{k}={v}")]
    proc = _opsbook("run", name, *params, "--output", str(Path(output)), "--fail-on", "critical",
                    "--format", "json")  # fmt: skip
    if proc.returncode not in (0, 1):  # 1: findings at or above --fail-on, the run itself finished
        raise RunbookFailed(f"`opsbook run {name}` exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    summary = json.loads(proc.stdout)
    rows = sorted(
        ({k: f[k] for k in ("severity", "check", "object", "message")} for f in summary["findings"]),
        key=lambda r: -SEVERITY_RANK[r["severity"]],
    )
    df = pd.DataFrame(rows, columns=["severity", "check", "object", "message"])
    df.attrs["report"] = summary["files"].get("html", "")
    df.attrs["status"] = summary["status"]
    return df
