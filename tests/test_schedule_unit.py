"""Schedules without a cluster: cron parsing (names, macros), next-run preview, the rendered manifests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opsbook.engine import schedule
from opsbook.errors import BadInput


@pytest.mark.parametrize("expr", ["0 9 * * MON-FRI", "*/10 * * * *", "30 6 1 JAN,JUL *", "0 0 * * sun", "@daily"])
def test_cron_the_cronjob_controller_accepts(expr: str) -> None:
    assert schedule.validate_cron(expr) == expr


@pytest.mark.parametrize("expr", ["every ten minutes", "61 * * * *", "0 9 * * MON-FRY", "TZ=UTC 0 9 * * *", "* * * *"])
def test_cron_rejected(expr: str) -> None:
    with pytest.raises(BadInput, match="five-field cron"):
        schedule.validate_cron(expr)


def test_next_runs_skip_the_weekend_and_follow_the_time_zone() -> None:
    friday_10_utc = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)  # a Friday
    runs = schedule.next_runs("0 9 * * MON-FRI", None, 3, now=friday_10_utc)
    assert [t.isoformat() for t in runs] == [
        "2026-12-07T09:00:00+00:00",
        "2026-12-08T09:00:00+00:00",
        "2026-12-09T09:00:00+00:00",
    ]
    berlin = schedule.next_runs("0 9 * * MON-FRI", "Europe/Berlin", 1, now=friday_10_utc)
    assert berlin[0].astimezone(UTC).isoformat() == "2026-12-07T08:00:00+00:00"  # CET is UTC+1 in December


def test_bad_time_zone_is_refused() -> None:
    with pytest.raises(BadInput, match="IANA"):
        schedule.validate_time_zone("Mars/Olympus")


def test_render_ships_the_cluster_role_and_takes_env_annotation_time_zone() -> None:
    arn = "arn:aws:iam::123456789012:role/opsbook-runner.opsbook.sa.prod.example.com"
    objs = schedule.render(
        "validate-cluster",
        "0 9 * * MON-FRI",
        {"cluster_name": "prod.example.com"},
        "s3://reports/opsbook",
        env={"AWS_REGION": "eu-central-1"},
        service_account_annotations={"eks.amazonaws.com/role-arn": arn},
        time_zone="Europe/Berlin",
    )
    kinds = [o["kind"] for o in objs]
    assert kinds == ["ClusterRole", "Namespace", "ServiceAccount", "ClusterRoleBinding", "ConfigMap", "CronJob"]
    role = objs[0]
    assert role["metadata"]["name"] == "opsbook-readonly"
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
    sa = objs[2]
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": arn}
    cj = objs[-1]["spec"]
    assert cj["schedule"] == "0 9 * * MON-FRI" and cj["timeZone"] == "Europe/Berlin"
    container = cj["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "AWS_REGION", "value": "eu-central-1"}]
    assert container["envFrom"] == [{"secretRef": {"name": "opsbook-notify", "optional": True}}]
    assert container["args"][:2] == ["run", "validate-cluster"]
    assert "cluster_name: prod.example.com" in objs[4]["data"]["params.yaml"]


def test_iam_policy_is_package_data_and_read_only() -> None:
    statements = {st["Sid"]: st for st in schedule.iam_policy()["Statement"]}
    writes = statements.pop("OpsbookWriteReports")  # the reports bucket only: save and prune reports
    assert all(r.startswith("arn:aws:s3:::REPORTS_BUCKET") for r in writes["Resource"])
    actions = {a for st in statements.values() for a in st["Action"]}
    assert actions and all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions)
