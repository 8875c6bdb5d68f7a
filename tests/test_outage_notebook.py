"""notebooks/outage-analysis.ipynb runs headless under papermill against the sandbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import nbformat
import papermill as pm
import pytest

from opsbook.sandbox import Sandbox, faults

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook, pytest.mark.private_sandbox]
NB = Path(__file__).resolve().parents[1] / "notebooks" / "outage-analysis.ipynb"


def _metadata(nb: nbformat.NotebookNode) -> list[dict]:
    return [
        o["metadata"]["opsbook"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "opsbook" in o.get("metadata", {})
    ]


def test_outage_notebook_finds_credit_exhaustion_and_writes_postmortem(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    st = sandbox.state()
    ec2 = boto3.client("ec2", region_name=st.region)
    worker = launch_worker(ec2, st.cluster_name)  # a fresh instance: no metrics seeded by earlier runs
    try:
        _run_and_check(st, worker, tmp_path)
    finally:  # a running instance without a node would make the next `sandbox up` register one
        ec2.terminate_instances(InstanceIds=[worker])


def _run_and_check(st, worker: str, tmp_path: Path) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"  # CloudWatch keeps what earlier runs seeded: a fresh series
    start = (datetime.now(UTC) - timedelta(minutes=58)).replace(second=0, microsecond=0)
    step = timedelta(minutes=5)
    balance = [30.0, 20.0, 10.0] + [0.0] * 8
    faults.seed_metrics(
        [
            faults.MetricSeries("AWS/EC2", "CPUCreditBalance", {"InstanceId": worker}, start, step, balance),
            faults.MetricSeries(
                "AWS/EC2",
                "CPUUtilization",
                {"InstanceId": worker},
                start,
                step,
                [90.0, 90.0, 90.0] + [10.0] * 8,
                "Percent",
            ),
            faults.MetricSeries(
                "Custom/Notebook",
                "Backlog",
                {"Queue": queue},
                start,
                step,
                [5.0] * 5 + [100.0, 200.0, 300.0, 400.0, 500.0, 600.0],
            ),
        ],
        st.region,
    )
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NB),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
        parameters={
            "title": "Backlog on nb",
            "last_hours": 1,
            "region": st.region,
            "cluster_name": st.cluster_name,
            "extra_metrics": [f"Custom/Notebook/Backlog:Queue={queue}"],
            "first_alert": (start + timedelta(minutes=40)).isoformat(),
            "resolved": (start + timedelta(minutes=55)).isoformat(),
            "toleration_seconds": 10,
            "node_monitor_grace_seconds": 10,
            "postmortem_path": str(tmp_path),
        },
    )
    nb = nbformat.read(out, as_version=4)
    meta = _metadata(nb)
    found = [f for m in meta for f in m.get("findings", [m["finding"]] if "finding" in m else [])]
    credit = [f for f in found if f["check"] == "cpu.credits" and f["object"] == f"instance/{worker}"]
    assert credit and "precedes the growth of Backlog" in credit[0]["message"]
    records = {k: v for m in meta for k, v in m.get("record", {}).items()}
    draft = Path(records["outage.postmortem"])
    assert draft.parent == tmp_path and draft.exists()
    text = draft.read_text()
    assert text.startswith("# Post-mortem: Backlog on nb")
    assert "TTD (time to detect)" in text and "## Action items" in text and "cpu.credits" in text
    assert records["outage.summary"]["causes"] >= 1
    # the swimlane figure was drawn
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def launch_worker(ec2, cluster: str, instance_type: str = "t2.micro") -> str:
    """A new cluster instance in moto (tags as kops sets them)."""
    tags = [
        {"Key": "KubernetesCluster", "Value": cluster},
        {"Key": "kops.k8s.io/instancegroup", "Value": "t-credits"},
    ]
    inst = ec2.run_instances(
        ImageId="ami-12c6146b",
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    return str(inst["InstanceId"])
