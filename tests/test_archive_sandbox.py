"""`opsbook events archive` on the sandbox: a kube-apiserver restart, its own kill -9, a 410 re-list.

The archiver runs as the real CLI in a subprocess; events are real core/v1 Events created through
the API server; the restart is the master-restart fault; 410 Gone comes from compacting the
sandbox's etcd (what kube-apiserver itself does every 5 minutes).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import utils as k8s_utils

from k8s_helpers import wait_until
from opsbook import archive as events_archive
from opsbook.analysis import outage, postmortem, timeline
from opsbook.archive import read_gaps
from opsbook.aws import evidence as aws_ev
from opsbook.k8s import evidence as k8s_ev
from opsbook.sandbox import Sandbox, faults
from opsbook.sandbox import cluster as kc

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[1]


class Archiver:
    """`opsbook events archive` as a background process (as a user or the Deployment runs it)."""

    def __init__(self, out: Path | str, namespace: str, log: Path) -> None:
        self.out, self.namespace, self.log = out, namespace, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).parent / "opsbook"
        args = [str(exe), "events", "archive", "--output", str(self.out), "--namespace", self.namespace]
        args += ["--flush-every", "1", "--max-backoff", "2", "--heartbeat-file", str(self.log) + ".alive"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(30) == -signal.SIGKILL

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def archiver(tmp_path: Path, namespace: str) -> Iterator[Archiver]:
    a = Archiver(tmp_path / "archive", namespace, tmp_path / "archiver.log")
    yield a
    if a.proc is not None and a.proc.poll() is None:
        a.proc.kill()
        a.proc.wait(30)


def _texts(out: Path | str) -> list[str]:
    if isinstance(out, Path):
        return [f.read_text() for f in sorted(out.glob("events-*.jsonl"))]
    bucket, prefix = out[len("s3://") :].split("/", 1)
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", []))
    return [s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys if k.endswith(".jsonl")]


def _state(out: Path | str) -> dict[str, Any]:
    if isinstance(out, Path):
        return dict(json.loads((out / ".opsbook-archive-state.json").read_text()))
    bucket, prefix = out[len("s3://") :].split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/_archive-state.json")["Body"].read()
    return dict(json.loads(body))


def _lines(out: Path | str) -> list[dict[str, Any]]:
    return [json.loads(x) for t in _texts(out) for x in t.splitlines() if x.endswith("}")]


def _versions(out: Path | str) -> Counter[tuple[str, int]]:
    """(uid, count) → how many lines hold that event version."""
    return Counter((e["metadata"]["uid"], e.get("count") or 1) for e in _lines(out) if e.get("kind") == "Event")


def _gaps(out: Path | str) -> list[dict[str, Any]]:
    return [e for e in _lines(out) if e.get("kind") == "OpsbookArchiveGap"]


def _event(core: k8s.CoreV1Api, namespace: str, name: str) -> str:
    now = datetime.now(UTC)
    ev = core.create_namespaced_event(
        namespace,
        k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(name=name),
            involved_object=k8s.V1ObjectReference(kind="Pod", name=f"pod-{name}", namespace=namespace),
            reason="ArchiveTest",
            message=f"event {name}",
            type="Normal",
            count=1,
            first_timestamp=now,
            last_timestamp=now,
            source=k8s.V1EventSource(component="archive-test"),
        ),
    )
    return str(ev.metadata.uid)


def _repeat(core: k8s.CoreV1Api, namespace: str, name: str, count: int) -> None:
    """The event happened again: count goes up (what kubelet and controllers do)."""
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    core.patch_namespaced_event(name, namespace, {"count": count, "lastTimestamp": stamp})


def _batch(core: k8s.CoreV1Api, namespace: str, prefix: str, n: int = 5) -> dict[str, str]:
    return {f"{prefix}-{i}": _event(core, namespace, f"{prefix}-{i}") for i in range(n)}


def _archived(out: Path | str, wanted: set[tuple[str, int]]) -> bool:
    return wanted <= set(_versions(out))


def _epoch(iso: str) -> float:
    return pd.Timestamp(iso).timestamp()


def test_archive_survives_a_master_restart(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str, archiver: Archiver
) -> None:
    core = k8s.CoreV1Api(api)
    archiver.start()
    before = _batch(core, namespace, "before")
    wait_until(lambda: _archived(archiver.out, {(u, 1) for u in before.values()}), 60, "batch 1 archived")

    times = faults.restart_apiserver(sandbox, down_seconds=5)
    after = _batch(core, namespace, "after")
    _repeat(core, namespace, "before-0", 2)
    wanted = {(u, 1) for u in [*before.values(), *after.values()]} | {(before["before-0"], 2)}
    wait_until(lambda: _archived(archiver.out, wanted), 90, "batch 2 archived after the restart")

    assert archiver.proc is not None and archiver.proc.poll() is None  # still running
    versions = _versions(archiver.out)
    assert set(versions) == wanted and set(versions.values()) == {1}  # all of them, none twice
    # the outage was seen, retried with backoff, and recorded as a gap that lost nothing
    log = archiver.log.read_text()
    assert "retry 1 in" in log, log
    gaps = _gaps(archiver.out)
    assert gaps and all(g["reason"] == "API server unreachable" and g["lost"] is False for g in gaps), gaps
    assert min(_epoch(g["from"]) for g in gaps) <= times["stopped_at"] + 1
    assert max(_epoch(g["to"]) for g in gaps) >= times["started_at"] - 1
    assert archiver.stop() == 0


@pytest.mark.parametrize("where", ["local", "s3"])
def test_archive_survives_its_own_kill_9(api: k8s.ApiClient, namespace: str, archiver: Archiver, where: str) -> None:
    core = k8s.CoreV1Api(api)
    if where == "s3":  # the sandbox's moto server (the sandbox fixture exports AWS_ENDPOINT_URL)
        region = boto3.session.Session().region_name or "us-east-1"
        where_kw = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        boto3.client("s3").create_bucket(Bucket=namespace, **where_kw)
        archiver.out = f"s3://{namespace}/events"
    archiver.start()
    first = _batch(core, namespace, "first")
    wait_until(lambda: _archived(archiver.out, {(u, 1) for u in first.values()}), 60, "batch 1 archived")
    archiver.kill9()
    killed_at = time.time()

    second = _batch(core, namespace, "second")  # created while no archiver runs
    _repeat(core, namespace, "first-1", 2)
    restarted_at = time.time()
    archiver.start()
    wanted = {(u, 1) for u in [*first.values(), *second.values()]} | {(first["first-1"], 2)}
    wait_until(lambda: _archived(archiver.out, wanted), 60, "batch 2 archived after the restart")

    versions = _versions(archiver.out)
    assert set(versions) == wanted and set(versions.values()) == {1}
    down = [g for g in _gaps(archiver.out) if g["reason"] == "archiver not running"]
    assert len(down) == 1 and down[0]["lost"] is False, _gaps(archiver.out)
    assert "resumed from resourceVersion" in down[0]["detail"]
    assert _epoch(down[0]["from"]) <= killed_at + 1 and _epoch(down[0]["to"]) >= restarted_at - 1
    state = _state(archiver.out)
    assert state["rv"] and {f"{u}/1/0" for u in second.values()} <= set(state["seen"])
    assert archiver.stop() == 0


def _etcd_compact(sandbox: Sandbox) -> int:
    """Compact the sandbox's etcd to its current revision (via etcd's JSON gateway); return it."""
    pid = kc.component_pid(sandbox.kwok_workdir, sandbox.name, "kube-apiserver")
    assert pid is not None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    servers = next(a.split("=", 1)[1] for a in argv if a.startswith("--etcd-servers="))
    url = servers.split(",")[0]
    assert url.startswith("http://"), f"etcd at {url}: this helper speaks plain HTTP only"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read()))

    rev = int(post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"])
    post("/v3/kv/compaction", {"revision": rev, "physical": True})
    return rev


def test_relist_after_410_records_a_gap_that_outage_analysis_reports(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str, archiver: Archiver
) -> None:
    core = k8s.CoreV1Api(api)
    window_start = datetime.now(UTC) - timedelta(minutes=1)  # event times have whole seconds
    archiver.start()
    first = _batch(core, namespace, "old")
    wait_until(lambda: _archived(archiver.out, {(u, 1) for u in first.values()}), 60, "batch 1 archived")
    archiver.kill9()
    second = _batch(core, namespace, "new")
    _etcd_compact(sandbox)  # the saved resourceVersion is now too old: the watch gets 410 Gone
    archiver.start()
    wanted = {(u, 1) for u in [*first.values(), *second.values()]}
    wait_until(lambda: _archived(archiver.out, wanted), 60, "batch 2 archived after the re-list")
    assert archiver.stop() == 0

    versions = _versions(archiver.out)
    assert set(versions) == wanted and set(versions.values()) == {1}  # the re-list wrote nothing twice
    lost = [g for g in _gaps(archiver.out) if g["lost"]]
    assert len(lost) == 1 and lost[0]["reason"] == "archiver not running; listed again", _gaps(archiver.out)
    assert "410 Gone" in archiver.log.read_text()

    # outage-analysis over the window, from the archive alone, says the evidence has a gap
    window_end = datetime.now(UTC)
    inc = timeline.incident(window_start, window_end, title="archive gap")
    events, notes = events_archive.collect_events(inc.start, inc.end, None, [namespace], str(archiver.out), live=False)
    assert set(events["reason"]) == {"ArchiveTest"} and len(events) == len(wanted)
    gap_note = [n for n in notes if n.startswith("the event evidence has a gap from")]
    assert gap_note == [
        f"the event evidence has a gap from {lost[0]['from']} to {lost[0]['to']} ({lost[0]['seconds']:.0f} s, "
        f"archiver not running; listed again): events of that stretch may be missing from the archive "
        f"{archiver.out}"
    ]
    assert read_gaps(str(archiver.out), inc.start, inc.end)[-1]["lost"] is True
    tl = timeline.build_timeline(events, [], inc)
    found = outage.run_detectors(
        events, k8s_ev.rows([]), pd.DataFrame(columns=aws_ev.METRIC_COLUMNS), inc.start, inc.end
    )
    draft = postmortem.draft(inc, tl, found, notes)
    assert "## Evidence not available" in draft and "the event evidence has a gap from" in draft


def test_deployment_manifest_applies_with_server_side_dry_run(api: k8s.ApiClient, namespace: str) -> None:
    import typer

    from opsbook.cli.events import events_app

    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "events-archiver.yaml").read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    role = docs[2]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]
    dep = docs[4]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == docs[1]["metadata"]["name"] == docs[3]["subjects"][0]["name"]
    container = pod["containers"][0]
    # the args are ones the CLI accepts
    app = typer.Typer()
    app.add_typer(events_app, name="events")  # as opsbook.cli registers it
    events_group = typer.main.get_command(app).commands["events"]  # type: ignore[attr-defined]
    assert container["args"][:2] == ["events", "archive"]
    ctx = events_group.commands["archive"].make_context("archive", list(container["args"][2:]))
    assert ctx.params["heartbeat_file"] == "/tmp/archive-alive" and ctx.params["output"].startswith("s3://")

    # the liveness probe notices a heartbeat that stopped (a stuck watch)
    probe = container["livenessProbe"]["exec"]["command"]
    beat = Path(os.environ.get("TMPDIR", "/tmp")) / f"{namespace}.alive"
    code = probe[2].replace("/tmp/archive-alive", str(beat))
    beat.touch()
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    os.utime(beat, (time.time() - 301, time.time() - 301))
    assert subprocess.run([sys.executable, "-c", code]).returncode == 1
    beat.unlink()

    # server-side dry run on the sandbox, in the test's namespace (the Namespace object renamed)
    for d in docs:
        if d["kind"] == "Namespace":
            d["metadata"]["name"] = f"{namespace}-dry"
        elif d["metadata"].get("namespace"):
            d["metadata"]["namespace"] = namespace
        for s in d.get("subjects", []):
            s["namespace"] = namespace
        created = k8s_utils.create_from_dict(api, d, dry_run="All")
        assert created and created[0].metadata.name == d["metadata"]["name"]
    # a dry run persists nothing
    names = [x.metadata.name for x in k8s.AppsV1Api(api).list_namespaced_deployment(namespace).items]
    assert names == []
