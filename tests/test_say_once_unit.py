"""The facts said once: the s3:// parser, the ISO-8601 parser, the list pager, the burstable test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from opsbook.aws.s3url import is_s3, parse_s3, split_s3
from opsbook.data.tables import burstable_families, credit_table, is_burstable
from opsbook.errors import BadInput
from opsbook.k8s.client import continue_kwargs, continue_query, pages
from opsbook.times import parse_time


def test_s3_urls() -> None:
    assert split_s3("s3://bucket") == ("bucket", "")
    assert split_s3("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3("s3://bucket/p") == ("bucket", "p")
    assert parse_s3("s3://") is None and parse_s3("/tmp/reports") is None
    assert is_s3("s3://x") and not is_s3("reports/s3://x")
    with pytest.raises(BadInput, match="has no bucket"):
        split_s3("s3://", "--output 's3://'")
    with pytest.raises(BadInput, match="not an S3 URL"):
        split_s3("gs://bucket")


def test_iso_timestamps_are_utc() -> None:
    assert parse_time("2026-11-25T00:10:00Z") == datetime(2026, 11, 25, 0, 10, tzinfo=UTC)
    assert parse_time("2026-11-25T00:10:00") == datetime(2026, 11, 25, 0, 10, tzinfo=UTC)  # naive: UTC
    cet = parse_time("2026-11-25T01:10:00+01:00")
    assert cet == datetime(2026, 11, 25, 0, 10, tzinfo=UTC) and cet.utcoffset() == timedelta(0)
    aware = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    assert parse_time(aware) == datetime(2026, 1, 1, 17, tzinfo=UTC)
    with pytest.raises(BadInput, match="-p start: 'yesterday' is not an ISO-8601 timestamp"):
        parse_time("yesterday", "-p start")


def test_the_pager_follows_continue_until_it_is_empty() -> None:
    served = {None: {"items": [1, 2], "metadata": {"continue": "a"}},
              "a": {"items": [3], "metadata": {"continue": "b"}},
              "b": {"items": [], "metadata": {"continue": ""}}}  # fmt: skip
    asked: list[str | None] = []

    def fetch(token: str | None) -> dict[str, object]:
        asked.append(token)
        return served[token]

    assert [i for p in pages(fetch) for i in p["items"]] == [1, 2, 3]  # type: ignore[attr-defined]
    assert asked == [None, "a", "b"]
    assert continue_query(None, 10) == [("limit", 10)] and continue_query("t") == [("limit", 500), ("continue", "t")]
    assert continue_kwargs("t", 5, watch=False) == {"limit": 5, "_continue": "t", "watch": False}


def test_burstable_is_read_from_the_credit_table() -> None:
    assert burstable_families() == tuple(dict.fromkeys(credit_table()["family"]))
    assert set(burstable_families()) == {"t2", "t3", "t3a", "t4g"}
    assert is_burstable("t3.medium") and not is_burstable("m5.large") and not is_burstable("t3.gigantic")
