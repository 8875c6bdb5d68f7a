"""The cost / CPU-credit review against the sandbox: real moto server (EC2, ASG, S3, CloudWatch) + apiserver.

Two instance groups are added to the sandbox's kops-shaped cluster (a t3.medium unlimited group and an
m5.large group), the four hand-computed scenarios of test_credits_analysis are seeded into moto's CloudWatch
with ``opsbook.sandbox.faults.seed_metrics`` (hourly points: moto's GetMetricData is O(queries × periods ×
points)), and the library and the notebook must find what was planted.
"""

from __future__ import annotations

import json
import os
import random
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import nbformat
import pandas as pd
import papermill as pm
import pytest
import yaml
from kubernetes import client as k8s

from opsbook.analysis import credits as c
from opsbook.aws import cloudwatch, ec2, pricing
from opsbook.kops.spec import ClusterSpec, InstanceGroup
from opsbook.sandbox import Sandbox, seed
from opsbook.sandbox.faults import MetricSeries, seed_metrics

pytestmark = [pytest.mark.sandbox]
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "cost-credit-review.ipynb"
HOURS = 336


@dataclass(frozen=True)
class CreditSpecCluster(ClusterSpec):
    """The sandbox's cluster plus a T3 unlimited group and an idle M5 group."""

    def instance_groups(self) -> list[InstanceGroup]:
        return [
            *super().instance_groups(),
            InstanceGroup("nodes-burst", "Node", "t3.medium", "eu-central-1a", 1, 1, "unlimited"),
            InstanceGroup("nodes-idle", "Node", "m5.large", "eu-central-1b", 1, 1),
        ]


def _hourly(values: list[float]) -> list[float]:
    assert len(values) == HOURS
    return values


# instance group -> metric -> hourly values (see test_credits_analysis for the hand computations)
SCENARIOS: dict[str, dict[str, list[float]]] = {
    "nodes-eu-central-1a": {  # t2.medium bursting at 60 % for the last 6 h: 288 credits left, 6.0 h to go
        "CPUUtilization": [10.0] * 330 + [60.0] * 6,
        "CPUCreditUsage": [12.0] * 330 + [72.0] * 6,
        "CPUCreditBalance": [576.0] * 330 + [576.0 - 48 * (i + 1) for i in range(6)],
    },
    "nodes-eu-central-1b": {  # t2.medium throttled at its 20 % baseline for the last 10 h
        "CPUUtilization": [10.0] * 326 + [20.0] * 10,
        "CPUCreditUsage": [12.0] * 326 + [24.0] * 10,
        "CPUCreditBalance": [576.0] * 326 + [0.0] * 10,
    },
    "nodes-eu-central-1c": {  # t2.medium steady at 10 %: never bursts
        "CPUUtilization": [10.0] * HOURS,
        "CPUCreditUsage": [12.0] * HOURS,
        "CPUCreditBalance": [576.0] * HOURS,
    },
    "master-eu-central-1a": {"CPUUtilization": [15.0] * HOURS},  # m3.medium, not burstable
    "nodes-burst": {  # t3.medium unlimited, 40 % for 72 h: 576 surplus credits charged ($0.48)
        "CPUUtilization": [10.0] * 264 + [40.0] * 72,
        "CPUCreditUsage": [12.0] * 264 + [48.0] * 72,
        "CPUCreditBalance": [576.0] * 264 + [576.0 - 24 * (i + 1) for i in range(24)] + [0.0] * 48,
        "CPUSurplusCreditBalance": [0.0] * 288 + [24.0 * (i + 1) for i in range(24)] + [576.0] * 24,
        "CPUSurplusCreditsCharged": [0.0] * 312 + [24.0] * 24,
    },
    "nodes-idle": {"CPUUtilization": [2.0] * HOURS},  # m5.large idle
}


@dataclass
class Seeded:
    end: datetime
    inventory: pd.DataFrame
    by_group: dict[str, str]  # instance group -> instance id


@pytest.fixture(scope="module")
def seeded(sandbox: Sandbox, api: k8s.ApiClient) -> Iterator[Seeded]:
    st = sandbox.state()
    assert st is not None
    assert st.spec["name"] == ClusterSpec().name  # the conftest sandbox is the default cluster
    spec = CreditSpecCluster()
    instances = seed.seed_aws(spec)
    seed.seed_nodes(api, spec, instances)
    # the kops state store declares the T3 group unlimited (as `kops create ig` + `cpuCredits` would)
    ig_doc = {
        "apiVersion": "kops.k8s.io/v1alpha2",
        "kind": "InstanceGroup",
        "metadata": {"name": "nodes-burst", "labels": {"kops.k8s.io/cluster": spec.name}},
        "spec": {
            "role": "Node",
            "machineType": "t3.medium",
            "minSize": 1,
            "maxSize": 1,
            "cpuCredits": "unlimited",
            "subnets": ["eu-central-1a"],
        },
    }
    boto3.client("s3").put_object(
        Bucket=seed.STATE_BUCKET,
        Key=f"{spec.name}/instancegroup/nodes-burst",
        Body=yaml.safe_dump(ig_doc).encode(),
    )
    # a window of its own (moto cannot delete metric data; a kept sandbox must not double-count sums)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end = now - timedelta(hours=400 * random.randint(1, 500))
    by_group = {i.instance_group: i.instance_id for i in instances}
    series = [
        MetricSeries(
            "AWS/EC2",
            metric,
            {"InstanceId": by_group[ig]},
            end - timedelta(hours=HOURS),
            timedelta(hours=1),
            _hourly(values),
            "Percent" if metric == "CPUUtilization" else "Count",
        )
        for ig, metrics in SCENARIOS.items()
        for metric, values in metrics.items()
    ]
    written = seed_metrics(series)
    assert written == sum(len(v) for m in SCENARIOS.values() for v in m.values())
    yield Seeded(end, ec2.inventory(spec.name), by_group)
    _remove_extra_groups(api, spec)


def _remove_extra_groups(api: k8s.ApiClient, spec: ClusterSpec) -> None:
    """Put the shared sandbox back: drop the instance groups this module added (ASG, instances, nodes)."""
    default = {ig.name for ig in ClusterSpec().instance_groups()}
    extra = [ig.name for ig in spec.instance_groups() if ig.name not in default]
    asg = boto3.client("autoscaling")
    core = k8s.CoreV1Api(api)
    for inst in seed.list_instances(spec):
        if inst.instance_group in extra:
            core.delete_node(inst.private_dns)
    for name in extra:
        asg.delete_auto_scaling_group(AutoScalingGroupName=f"{name}.{spec.name}", ForceDelete=True)
        boto3.client("ec2").delete_launch_template(LaunchTemplateName=f"{name}.{spec.name}")
        boto3.client("s3").delete_object(Bucket=seed.STATE_BUCKET, Key=f"{spec.name}/instancegroup/{name}")


def test_inventory_groups_modes_and_nodes(seeded: Seeded) -> None:
    inv = seeded.inventory.set_index("instance_group")
    assert {"master-eu-central-1a", "nodes-eu-central-1a", "nodes-burst", "nodes-idle"} <= set(inv.index)
    assert inv.loc["master-eu-central-1a", "role"] == "master"
    assert inv.loc["nodes-burst", "asg"] == "nodes-burst.opsbook.k8s.local"
    # every instance is a node (providerID aws:///<az>/<instance-id>)
    assert (inv["node"].str.startswith("ip-")).all()
    # moto's DescribeInstanceCreditSpecifications says "standard" for the t3 unlimited instance: kops wins
    burst = inv.loc["nodes-burst"]
    assert (burst["credit_mode"], burst["credit_mode_source"], burst["credit_mode_api"]) == (
        "unlimited",
        "kops",
        "standard",
    )
    # nothing declared for the t2 groups: the API's answer (standard, T2's default)
    assert inv.loc["nodes-eu-central-1a", "credit_mode_source"] == "ec2-api"
    assert inv.loc["nodes-idle", "credit_mode"] == ""  # m5: no credits
    mism = [
        f for f in ec2.inventory_findings(seeded.inventory) if f["check"] == "inventory.credit_mode_mismatch"
    ]
    assert [f["object"] for f in mism] == [seeded.by_group["nodes-burst"]]


def test_launch_template_credit_spec_when_kops_state_is_missing(seeded: Seeded) -> None:
    inv = ec2.inventory("opsbook.k8s.local", state_store="s3://no-such-kops-state", with_nodes=False)
    burst = inv.set_index("instance_group").loc["nodes-burst"]
    assert (burst["credit_mode"], burst["credit_mode_source"]) == ("unlimited", "launch-template")
    assert (inv["node"] == "").all()


def test_batched_fetch_finds_the_hand_computed_scenarios(seeded: Seeded) -> None:
    data = cloudwatch.fetch_credit_metrics(seeded.inventory, end=seeded.end, days=14)
    # 4 burstable × 5 metrics + 2 fixed × CPUUtilization = 22 queries: one GetMetricData call
    assert data.queries == 22 and data.api_calls == {"GetMetricData": 1}
    f = data.frame
    assert set(f.columns) == {"timestamp", "instance_id", "metric", "stat", "value"}
    assert len(f) == sum(len(v) for m in SCENARIOS.values() for v in m.values())
    assert f["timestamp"].min() == pd.Timestamp(seeded.end - timedelta(hours=HOURS))
    s = c.credit_summary(f, seeded.inventory, period_s=data.period_s).set_index("instance_id")
    g = seeded.by_group
    assert s.loc[g["nodes-eu-central-1a"], "hours_to_exhaustion"] == pytest.approx(6.0)
    assert (
        s.loc[g["nodes-eu-central-1b"], "throttled_hours"] == 10
        and s.loc[g["nodes-eu-central-1b"], "throttled_now"]
    )
    assert s.loc[g["nodes-burst"], "surplus_charged_usd"] == pytest.approx(0.48)
    assert s.loc[g["nodes-idle"], "classification"] == "over-provisioned"
    assert (
        s.loc[g["nodes-eu-central-1c"], "classification"] == "over-provisioned"
    )  # 10 % ≤ 20 %: never bursts


def test_pagination_and_batches_against_moto(seeded: Seeded) -> None:
    # 5-minute statistics over 14 days = 4032 points/query → 25 queries per call → 22 queries still 1 call;
    # 1-minute over 14 days = 20160 points → 5 per call → 5 calls. moto returns the same rows either way.
    cw = boto3.client("cloudwatch")
    qs = cloudwatch.credit_queries(seeded.inventory)
    start, end = seeded.end - timedelta(days=14), seeded.end
    with cloudwatch.counting(cw) as calls:
        df = cloudwatch.get_metric_data(qs, start, end, period_s=60 * 60 * 24, cw=cw)
    assert calls["GetMetricData"] == 1
    # daily Sum of the T3 surplus charged: all 576 credits fall on the last day
    t3 = df[
        (df["instance_id"] == seeded.by_group["nodes-burst"]) & (df["metric"] == "CPUSurplusCreditsCharged")
    ]
    assert t3["value"].sum() == 576.0 and t3["value"].iloc[-1] == 576.0
    assert cloudwatch.planned_calls(len(qs), start, end, 60) == 5


def test_pricing_falls_back_to_reference_table_on_moto(seeded: Seeded) -> None:
    p = pricing.on_demand_prices(["t2.medium", "t3a.medium", "m5.large"], "eu-central-1")
    assert p.source == "reference-table" and p.as_of.startswith("2026-")
    assert "Pricing API unavailable" in p.note and "<html" not in p.note.lower()
    assert "us-east-1 rates only" in p.describe()
    assert p.table.set_index("instance_type").loc["m5.large", "usd_per_hour"] == 0.096


CE_BILL = {"t2.medium": "47.42", "t3.medium": "14.37", "m5.large": "32.26", "m3.medium": "22.51"}


@pytest.fixture(scope="module")
def ce_injected(seeded: Seeded) -> dict[str, str]:
    """Queue one Cost Explorer answer in moto (POST /moto-api/static/ce/cost-and-usage-results)."""
    start, end = (seeded.end - timedelta(days=14)).date(), seeded.end.date()
    result = {
        "results": [
            {
                "ResultsByTime": [
                    {
                        "TimePeriod": {"Start": str(start), "End": str(end)},
                        "Total": {},
                        "Estimated": False,
                        "Groups": [
                            {"Keys": [t], "Metrics": {"UnblendedCost": {"Amount": usd, "Unit": "USD"}}}
                            for t, usd in CE_BILL.items()
                        ],
                    }
                ],
                "DimensionValueAttributes": [],
            }
        ]
    }
    req = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps(result).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201
    return CE_BILL


def test_cost_explorer_actuals(seeded: Seeded, ce_injected: dict[str, str]) -> None:
    a = pricing.cost_explorer_actuals(seeded.end - timedelta(days=14), seeded.end, "opsbook.k8s.local")
    assert dict(zip(a.table["instance_type"], a.table["usd"], strict=True)) == {
        t: float(v) for t, v in ce_injected.items()
    }
    assert a.record()["usd"] == pytest.approx(116.56) and "KubernetesCluster=opsbook.k8s.local" in a.note
    # another window: moto has nothing queued for it, Cost Explorer answers with no results
    empty = pricing.cost_explorer_actuals(seeded.end - timedelta(days=3), seeded.end, "opsbook.k8s.local")
    assert empty.table.empty and empty.describe().startswith("No Cost Explorer actuals")


def _opsbook_outputs(nb: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    found: list[dict[str, Any]] = []
    records: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("opsbook", {})
            found += meta.get("findings", []) + ([meta["finding"]] if "finding" in meta else [])
            records.update(meta.get("record", {}))
    return found, records


@pytest.mark.notebook
def test_notebook_reports_findings_against_the_sandbox(
    seeded: Seeded, ce_injected: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "cost-credit-review.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT),
        parameters={"end": seeded.end.isoformat(), "window_days": 14},
    )
    nb = nbformat.read(out, as_version=4)
    found, records = _opsbook_outputs(nb)
    by = {(f["check"], f["object"]): f for f in found}
    g = seeded.by_group
    assert by[("credits.throttled", g["nodes-eu-central-1b"])]["severity"] == "high"
    ex = by[("credits.exhaustion", g["nodes-eu-central-1a"])]
    assert ex["severity"] == "high" and "6.0 h" in ex["message"]
    assert by[("credits.surplus_charged", g["nodes-burst"])]["data"]["surplus_usd"] == pytest.approx(0.48)
    assert ("rightsizing.over_provisioned", g["nodes-idle"]) in by
    cheaper = by[("cost.cheaper_alternative", "ig/nodes-idle")]
    assert "t3a.large" in cheaper["message"] and "saves $15.18/month" in cheaper["message"]
    assert records["price_source"]["source"] == "reference-table"
    assert records["cost_explorer"]["usd"] == pytest.approx(116.56)
    review = records["credit_review"]
    assert review["throttled_now"] == 1 and review["exhausting_within_24h"] == 1
    assert review["api_calls"] == {"GetMetricData": 1}
    # the three plots rendered as PNG
    pngs = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pngs) == 3
