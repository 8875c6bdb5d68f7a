"""Report history on a local directory: manifest under concurrent writers, retention, index page, diff."""

from __future__ import annotations

import json
import multiprocessing
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsbook.engine import history
from opsbook.engine.storage import LocalStorage, S3Storage
from opsbook.sandbox import Sandbox

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def summary(runbook: str, i: int, cluster: str = "prod", status: str = "ok", **kw: Any) -> dict[str, Any]:
    started = T0 + timedelta(hours=i)
    return {
        "runbook": runbook,
        "run_id": f"{started:%Y%m%dT%H%M%SZ}-{runbook[:3]}{i:03d}",
        "status": status,
        "exit_code": 0 if status == "ok" else 1,
        "started": started.isoformat(),
        "ended": (started + timedelta(seconds=5)).isoformat(),
        "duration_s": 5.0,
        "finding_counts": {},
        "findings": kw.pop("findings", []),
        "records": kw.pop("records", {}),
        "cluster": {"cluster_name": cluster, "context": f"ctx-{cluster}", "api_server": "", "aws_account": ""},
        **kw,
    }


def save(store: LocalStorage, s: dict[str, Any]) -> None:
    store.write_run(s["runbook"], s["run_id"], {"ipynb": "{}", "html": "<p>", "json": json.dumps(s)})
    history.record_end(store, s)


def _writer(root: str, who: int, n: int) -> None:
    store = LocalStorage(Path(root))
    for i in range(n):
        history.record_end(store, summary(f"rb{who}", i))


def test_concurrent_writers_lose_no_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 20)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    entries = LocalStorage(tmp_path).read_manifest()
    assert entries is not None and len(entries) == 60
    assert len({(e["runbook"], e["run_id"]) for e in entries}) == 60


def test_retention_never_deletes_the_newest_run_of_a_runbook(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    for i in range(5):
        save(store, summary("validate-cluster", i))
    save(store, summary("validate-cluster", 7, cluster="devtest"))
    save(store, summary("cost-credit-review", 1))  # alone, and old
    now = T0 + timedelta(days=30)
    pruned = history.prune(store, keep=2, keep_days=1, now=now)
    left = {(e["runbook"], e["cluster_key"], e["run_id"][-3:]) for e in store.read_manifest() or []}
    # keep-days 1 would delete everything; the newest per runbook and cluster stays
    assert left == {("validate-cluster", "prod", "004"), ("validate-cluster", "devtest", "007"),
                    ("cost-credit-review", "prod", "001")}  # fmt: skip
    assert len(pruned.deleted) == 4
    assert sorted(p.name for p in (tmp_path / "validate-cluster").iterdir()) == sorted(
        f"{e['run_id']}.{x}" for e in store.read_manifest() or [] if e["runbook"] == "validate-cluster"
        for x in ("html", "ipynb", "json")
    )  # fmt: skip
    pruned = history.prune(store, keep=3, now=T0)  # nothing more to delete
    assert pruned.deleted == []


def test_index_escapes_and_filters_by_cluster_and_shows_score_trend(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    for i, score in enumerate((100, 80, 95)):
        save(store, summary("validate-cluster", i, records={"validation": {"score": score}}))
    save(store, summary("validate-cluster", 5, cluster="<script>alert(1)</script>"))
    page = (tmp_path / "index.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "100 → 80 → 95" in page
    assert '<option value="prod">prod</option>' in page


def test_a_run_that_never_finished_shows_as_interrupted_after_its_deadline(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    s = summary("validate-cluster", 0)
    history.record_start(store, s, timeout_s=60)
    [e] = store.read_manifest() or []
    assert history.effective_status(e, now=T0 + timedelta(seconds=30)) == "running"
    assert history.effective_status(e, now=T0 + timedelta(hours=1)) == "interrupted"
    assert "interrupted" in history.index_html([e], now=T0 + timedelta(hours=1))
    history.record_end(store, s)
    [e] = store.read_manifest() or []
    assert e["status"] == "ok"


def test_diff_names_new_resolved_and_unchanged_findings_and_the_score_change() -> None:
    def f(check: str, obj: str, sev: str = "high") -> dict[str, str]:
        return {"check": check, "object": obj, "severity": sev, "message": f"{check} on {obj}"}

    a = history.entry(summary("validate-cluster", 0, records={"validation": {"score": 100}},
                              findings=[f("nodes.ready", "node/a"), f("pods.pending", "pod/x", "low")]))  # fmt: skip
    b = history.entry(summary("validate-cluster", 1, records={"validation": {"score": 70}},
                              findings=[f("nodes.ready", "node/a"), f("nodes.ready", "node/b")]))  # fmt: skip
    d = history.diff(a, b)
    assert [x["object"] for x in d["new"]] == ["node/b"]
    assert [x["check"] for x in d["resolved"]] == ["pods.pending"]
    assert [x["object"] for x in d["unchanged"]] == ["node/a"]
    assert d["score"] == [100, 70] and d["score_change"] == -30
    entries = [a, b]
    assert history.find(entries, "validate-cluster@latest") is b
    assert history.find(entries, "validate-cluster@previous") is a
    assert history.find(entries, a["run_id"][:-1]) is a


@pytest.mark.sandbox
def test_concurrent_writers_to_s3_lose_no_entry(sandbox: Sandbox) -> None:
    """Conditional PUTs (If-Match / If-None-Match) against the sandbox's moto server."""
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)

    def write(who: int) -> None:
        store = S3Storage(bucket, "opsbook")
        for i in range(10):
            history.record_end(store, summary(f"rb{who}", i))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    entries = S3Storage(bucket, "opsbook").read_manifest()
    assert entries is not None and len({(e["runbook"], e["run_id"]) for e in entries}) == 30
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"opsbook/index.json", "opsbook/index.html"}


def test_index_shows_start_times_to_the_second_in_utc(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    s = summary("validate-cluster", 3)
    s["started"] = "2026-12-01T04:03:18.375349+01:00"  # a runner in another zone, microseconds
    history.record_start(store, s, timeout_s=60)
    history.record_end(store, s)
    page = history.index_html(store.read_manifest() or [])
    assert "<td>2026-12-01 03:03:18</td>" in page and "375349" not in page
