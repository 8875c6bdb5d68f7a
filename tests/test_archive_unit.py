"""The events archive's dedupe, high-water mark, roll-forward and gap markers, without a cluster.

Local archives are real files; the S3 archive is a real (threaded) moto server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from opsbook.archive import Sink, gap_notes, read_archive, read_gaps
from opsbook.archive_state import HighWater, event_key, gap_marker, is_gap


def _event(uid: str, count: int = 1, series: int | None = None, t: str = "2026-12-01T02:00:00Z") -> dict:
    ev: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"uid": uid, "name": f"e-{uid}", "namespace": "ns", "creationTimestamp": t},
        "count": count,
        "lastTimestamp": t,
        "reason": "Test",
    }
    if series is not None:
        ev["series"] = {"count": series, "lastObservedTime": t}
    return ev


def test_event_key_tells_versions_apart() -> None:
    assert event_key(_event("a")) == "a/1/0"
    assert event_key(_event("a", count=3)) == "a/3/0"
    assert event_key(_event("a", series=2)) == "a/1/2"
    assert event_key({"metadata": {}}) is None


def test_admit_lets_each_version_through_once_and_prune_forgets_old_keys() -> None:
    hw = HighWater()
    assert hw.admit(_event("a"), now=100.0)
    assert not hw.admit(_event("a"), now=101.0)  # the same version again (re-list)
    assert hw.admit(_event("a", count=2), now=102.0)  # the event repeated: a new version
    assert hw.admit(_event("b", series=1), now=103.0)
    assert not hw.admit(_event("b", series=1), now=104.0)
    assert hw.admit(_event("b", series=2), now=105.0)
    assert hw.admit({"metadata": {}}, now=106.0)  # no uid: never deduped
    assert hw.prune(now=7303.0, keep_s=7200.0) == 2  # a/1/0 (100) and a/2/0 (102) are > 2 h old
    assert sorted(hw.seen) == ["b/1/1", "b/1/2"]


def test_state_round_trips_and_unknown_versions_start_afresh() -> None:
    hw = HighWater(rv="42", alive=1.5, seen={"a/1/0": 1.0}, position={"file": "f", "offset": 9})
    back = HighWater.from_json(json.loads(json.dumps(hw.to_json())))
    assert back == hw
    assert HighWater.from_json({"version": 99, "rv": "1"}) == HighWater()


def test_gap_marker_is_not_an_event_and_is_reported_only_when_events_may_be_lost(tmp_path: Path) -> None:
    lost = gap_marker(1796090400.0, 1796090460.0, "watch expired (410 Gone)", lost=True)
    kept = gap_marker(1796090500.0, 1796090505.0, "API server unreachable", lost=False)
    assert lost["from"] == "2026-12-01T02:00:00Z" and lost["to"] == "2026-12-01T02:01:00Z"
    assert lost["seconds"] == 60.0 and is_gap(lost) and not is_gap(_event("a"))
    sink = Sink(str(tmp_path))
    sink.add(_event("a"))
    sink.add_gap(lost)
    sink.add_gap(kept)
    sink.flush()
    start, end = pd.Timestamp("2026-12-01T01:30Z"), pd.Timestamp("2026-12-01T03:00Z")
    assert [e["metadata"]["uid"] for e in read_archive(str(tmp_path), start, end)] == ["a"]
    gaps = read_gaps(str(tmp_path), start, end)
    assert [(g["from"], g["lost"]) for g in gaps] == [
        ("2026-12-01T02:00:00Z", True),
        ("2026-12-01T02:01:40Z", False),
    ]
    notes = gap_notes(gaps, str(tmp_path))
    assert notes == [
        "the event evidence has a gap from 2026-12-01T02:00:00Z to 2026-12-01T02:01:00Z (60 s, "
        f"watch expired (410 Gone)): events of that stretch may be missing from the archive {tmp_path}"
    ]
    # a window that ends before the gap does not report it
    assert read_gaps(str(tmp_path), start, pd.Timestamp("2026-12-01T01:59Z")) == []


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for f in sorted(path.glob("events-*.jsonl")) for x in f.read_text().splitlines()]


def test_local_roll_forward_after_a_crash_between_write_and_checkpoint(tmp_path: Path) -> None:
    # first run: batch 1 written and checkpointed, batch 2 written, then "kill -9" before the checkpoint
    sink, hw = Sink(str(tmp_path)), HighWater(rv="10")
    for i in range(3):
        assert hw.admit(_event(f"a{i}"), 1.0)
        sink.add(_event(f"a{i}"))
    sink.flush()
    hw.position = dict(sink.position)
    sink.save_state(hw)
    for i in range(2):
        assert hw.admit(_event(f"b{i}"), 2.0)
        sink.add(_event(f"b{i}"))
    sink.flush()
    state_file = tmp_path / ".opsbook-archive-state.json"
    assert json.loads(state_file.read_text())["rv"] == "10"
    # a torn half line at the end, as a crash in the middle of a write would leave
    day_file = Path(sink.position["file"])
    with day_file.open("ab") as f:
        f.write(b'{"metadata":{"uid":"torn"')
    # second run: load the mark, roll forward; the replay from rv 10 then offers everything again
    again = Sink(str(tmp_path))
    hw2 = again.load_state()
    assert hw2 is not None and hw2.rv == "10" and set(hw2.seen) == {"a0/1/0", "a1/1/0", "a2/1/0"}
    n, newest = again.roll_forward(hw2)
    assert n == 2 and newest is not None
    assert set(hw2.seen) >= {"b0/1/0", "b1/1/0"}
    assert again.position == {"file": str(day_file), "offset": day_file.stat().st_size}
    assert day_file.read_bytes().endswith(b"\n")  # the torn line is cut off
    for uid in ["a0", "a1", "a2", "b0", "b1", "c0"]:
        if hw2.admit(_event(uid), 3.0):
            again.add(_event(uid))
    again.flush()
    uids = [e["metadata"]["uid"] for e in _lines(tmp_path)]
    assert uids == ["a0", "a1", "a2", "b0", "b1", "c0"]


def test_single_jsonl_file_keeps_its_state_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "arch.jsonl"
    sink = Sink(str(target))
    sink.add(_event("a"))
    sink.flush()
    sink.save_state(HighWater(rv="5", position=dict(sink.position)))
    assert (tmp_path / "arch.jsonl.state.json").exists()
    hw = Sink(str(target)).load_state()
    assert hw is not None and hw.rv == "5" and hw.position["offset"] == target.stat().st_size


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="arch")
    yield client
    server.stop()


def test_s3_sink_writes_bounded_chunks_and_rolls_forward(s3: Any) -> None:
    sink = Sink("s3://arch/unit", s3=s3, max_lines=4)
    hw = HighWater(rv="7")
    flushed = 0
    for i in range(10):
        hw.admit(_event(f"e{i}"), 1.0)
        if sink.add(_event(f"e{i}")):
            flushed += sink.flush()
    assert flushed == 8 and len(sink.buffer) == 2  # never more than max_lines buffered
    hw.position = dict(sink.position)
    sink.save_state(hw)  # checkpoint after 2 chunks; the third is written, then a crash
    sink.flush()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="arch", Prefix="unit/")["Contents"]]
    chunks = sorted(k for k in keys if k.endswith(".jsonl"))
    assert len(chunks) == 3 and "unit/_archive-state.json" in keys
    assert [k.rsplit("-", 1)[1] for k in chunks] == ["00000001.jsonl", "00000002.jsonl", "00000003.jsonl"]
    sizes = [len(s3.get_object(Bucket="arch", Key=k)["Body"].read().splitlines()) for k in chunks]
    assert sizes == [4, 4, 2]
    # restart: state says chunk 2; rolling forward reads chunk 3 only
    again = Sink("s3://arch/unit", s3=s3, max_lines=4)
    hw2 = again.load_state()
    assert hw2 is not None and hw2.position["seq"] == 2 and len(hw2.seen) == 10
    hw2.seen.clear()  # so the roll-forward's own contribution is visible
    n, _ = again.roll_forward(hw2)
    assert n == 2 and set(hw2.seen) == {"e8/1/0", "e9/1/0"}
    assert again.position == {"key": chunks[2], "seq": 3}
    again.add(_event("next"))
    again.flush()
    assert again.position["seq"] == 4
    assert Sink("s3://arch/none", s3=s3).load_state() is None


def test_unreachable_api_server_is_retried_with_capped_logged_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import re
    import socket

    from kubernetes import client as k8s

    from opsbook.archive import archive_events

    with socket.socket() as s:  # a port nobody listens on: connection refused, like a stopped API server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = k8s.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = 0
    beat = tmp_path / "alive"
    with caplog.at_level("WARNING", logger="opsbook.archive"):
        sink = archive_events(
            str(tmp_path / "arch"),
            k8s.ApiClient(cfg),
            duration=4,
            flush_every=1,
            max_backoff=1.5,
            heartbeat=str(beat),
        )
    delays = [float(m) for m in re.findall(r"retry \d+ in ([\d.]+) s", caplog.text)]
    assert len(delays) >= 2 and max(delays) <= 1.5, caplog.text
    assert "listing events: NewConnectionError" in caplog.text and "Connection refused" in caplog.text
    assert sink.written == 0 and beat.exists()
    state = json.loads((tmp_path / "arch" / ".opsbook-archive-state.json").read_text())
    assert state["rv"] is None and state["alive"] is None  # never caught up: the next start lists


def test_a_second_writer_of_a_local_archive_is_refused(tmp_path: Path) -> None:
    from opsbook.errors import BadInput

    first, second = Sink(str(tmp_path)), Sink(str(tmp_path))
    first.lock()
    with pytest.raises(BadInput, match=r"is being archived by pid \d+: one archiver per archive"):
        second.lock()
    first.unlock()
    second.lock()  # free again once the first one stops
    second.unlock()


def test_archived_event_messages_are_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Event messages carry connection strings (issue 14's MongoDB/RabbitMQ URIs): the archive keeps none."""
    monkeypatch.setenv("OPSBOOK_TEST_DB_PASSWORD", "s3cr3t-from-the-env")
    sink = Sink(str(tmp_path))
    ev = _event("m")
    ev["message"] = ("Back-off: mongodb://taxi:hunter2pass@mongo-0.mongo:27017/taxi failed; "
                     "password=s3cr3t-from-the-env")
    ev["note"] = "amqps://push:Rabbit-Pass-99@rabbitmq:5671/"
    sink.add(ev)
    sink.flush()
    raw = "".join(p.read_text() for p in tmp_path.glob("*.jsonl"))
    assert "hunter2pass" not in raw and "s3cr3t-from-the-env" not in raw and "Rabbit-Pass-99" not in raw
    (got,) = read_archive(str(tmp_path), pd.Timestamp("2026-12-01T01:30Z"), pd.Timestamp("2026-12-01T03:00Z"))
    assert got["metadata"]["uid"] == "m" and "mongo-0.mongo:27017" in got["message"]  # the rest stays readable
