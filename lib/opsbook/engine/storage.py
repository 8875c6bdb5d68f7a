"""Where run records go: a local directory or ``s3://bucket/prefix``. Writes are atomic."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from opsbook.aws.s3url import is_s3, split_s3
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import BadInput

EXTENSIONS = ("ipynb", "html", "json")
MANIFEST = "index.json"
Entries = list[dict[str, Any]]
Update = Callable[[Entries], Entries]


class Storage(Protocol):
    """A place for run records."""

    def locations(self, runbook: str, run_id: str) -> dict[str, str]:
        """Where each file of a run will be."""
        ...

    def write_run(self, runbook: str, run_id: str, files: dict[str, str]) -> None:
        """Write a run's files (extension -> text)."""
        ...

    def write_artifact(self, runbook: str, run_id: str, name: str, data: bytes) -> str:
        """Save a file the runbook produced (e.g. a post-mortem draft) beside the report; return where."""
        ...

    def list_summaries(self) -> list[dict[str, Any]]:
        """Every run's JSON summary."""
        ...

    def write_index(self, html: str) -> None:
        """Replace the index page."""
        ...

    def read_manifest(self) -> Entries | None:
        """The index manifest (one small entry per run), or ``None`` if there is none yet."""
        ...

    def update_manifest(self, fn: Update) -> Entries:
        """Read-modify-write the manifest without losing a concurrent writer's entry; return the result."""
        ...

    def read_text(self, runbook: str, name: str) -> str:
        """One saved file of a run, e.g. ``<run_id>.json``."""
        ...

    def delete_run(self, runbook: str, run_id: str) -> int:
        """Delete every file of a run; return how many."""
        ...


def check_output(output: str) -> tuple[str, str] | None:
    """``(bucket, prefix)`` for an ``s3://`` output, ``None`` for a directory (no client is built).

    Raises:
        BadInput: an S3 URL without a bucket, or another scheme.
    """
    if is_s3(output):
        return split_s3(output, f"--output {output!r}")
    if "://" in output:
        raise BadInput(f"--output {output!r}: use a directory or s3://bucket/prefix")
    return None


def storage_for(output: str) -> Storage:
    """A Storage for a directory path or an ``s3://bucket/prefix`` URL."""
    s3 = check_output(output)
    if s3 is not None:
        return S3Storage(*s3)
    return LocalStorage(Path(output))


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalStorage:
    """Run records in a directory tree."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def locations(self, runbook: str, run_id: str) -> dict[str, str]:
        """Paths of a run's files."""
        return {ext: str(self.root / runbook / f"{run_id}.{ext}") for ext in EXTENSIONS}

    def write_run(self, runbook: str, run_id: str, files: dict[str, str]) -> None:
        """Write the notebook and HTML first, the JSON summary last (it marks a complete run)."""
        for ext in ("ipynb", "html", "json"):
            atomic_write(self.root / runbook / f"{run_id}.{ext}", files[ext])

    def write_artifact(self, runbook: str, run_id: str, name: str, data: bytes) -> str:
        """Write ``<run_id>.<name>`` beside the report."""
        path = self.root / runbook / f"{run_id}.{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return str(path)

    def list_summaries(self) -> list[dict[str, Any]]:
        """Every complete run's summary."""
        out = []
        for p in self.root.glob("*/*.json"):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        return out

    def write_index(self, html: str) -> None:
        """Replace index.html atomically."""
        atomic_write(self.root / "index.html", html)

    def read_manifest(self) -> Entries | None:
        """index.json, if present."""
        return _parse_manifest(self.root / MANIFEST)

    def update_manifest(self, fn: Update) -> Entries:
        """Under an exclusive lock (flock on .index.lock), read, change and atomically replace index.json."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".index.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = fn(self.read_manifest() or [])
                atomic_write(self.root / MANIFEST, _dump_manifest(entries))
                return entries
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_text(self, runbook: str, name: str) -> str:
        """A saved file's text."""
        try:
            return (self.root / runbook / name).read_text()
        except OSError as e:
            raise BadInput(f"no report file {runbook}/{name} under {self.root}") from e

    def delete_run(self, runbook: str, run_id: str) -> int:
        """Remove ``<runbook>/<run_id>.*``."""
        n = 0
        for p in (self.root / runbook).glob(f"{run_id}.*"):
            p.unlink(missing_ok=True)
            n += 1
        return n


class S3Storage:
    """Run records in S3 (each object is written whole, so writes are atomic)."""

    def __init__(self, bucket: str, prefix: str, s3: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = s3 or aws_client("s3")  # injected, or one for the environment

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def locations(self, runbook: str, run_id: str) -> dict[str, str]:
        """s3:// URLs of a run's files."""
        return {ext: f"s3://{self.bucket}/{self._key(runbook, f'{run_id}.{ext}')}" for ext in EXTENSIONS}

    def write_run(self, runbook: str, run_id: str, files: dict[str, str]) -> None:
        """Upload the run's files, the JSON summary last."""
        types = {"ipynb": "application/x-ipynb+json", "html": "text/html", "json": "application/json"}
        with boundary(f"writing the report to s3://{self.bucket}/{self.prefix}"):
            for ext in ("ipynb", "html", "json"):
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self._key(runbook, f"{run_id}.{ext}"),
                    Body=files[ext].encode(),
                    ContentType=types[ext],
                )

    def write_artifact(self, runbook: str, run_id: str, name: str, data: bytes) -> str:
        """Upload ``<run_id>.<name>`` beside the report."""
        key = self._key(runbook, f"{run_id}.{name}")
        with boundary(f"writing {name} to s3://{self.bucket}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def list_summaries(self) -> list[dict[str, Any]]:
        """Every run's summary under the prefix."""
        out = []
        with boundary(f"listing reports in s3://{self.bucket}/{self.prefix}"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key() + "/" if self.prefix else ""
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(".json"):
                        body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                        out.append(json.loads(body))
        return out

    def write_index(self, html: str) -> None:
        """Upload index.html."""
        with boundary("writing the report index"):
            self.s3.put_object(
                Bucket=self.bucket, Key=self._key("index.html"), Body=html.encode(), ContentType="text/html"
            )

    def _get_manifest(self) -> tuple[Entries | None, str | None]:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self._key(MANIFEST))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise
        return _loads_manifest(obj["Body"].read().decode()), str(obj["ETag"])

    def read_manifest(self) -> Entries | None:
        """index.json under the prefix, if present (one download)."""
        with boundary(f"reading the report index in s3://{self.bucket}/{self.prefix}"):
            return self._get_manifest()[0]

    def update_manifest(self, fn: Update) -> Entries:
        """Optimistic concurrency: a conditional PUT (If-Match the ETag read, If-None-Match on create), retried."""
        with boundary(f"updating the report index in s3://{self.bucket}/{self.prefix}"):
            for _ in range(20):
                current, etag = self._get_manifest()
                entries = fn(current or [])
                cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                try:
                    self.s3.put_object(
                        Bucket=self.bucket,
                        Key=self._key(MANIFEST),
                        Body=_dump_manifest(entries).encode(),
                        ContentType="application/json",
                        **cond,
                    )
                    return entries
                except ClientError as e:
                    code = e.response.get("Error", {}).get("Code")
                    if code not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                        raise
            raise BadInput(f"s3://{self.bucket}/{self._key(MANIFEST)}: too many concurrent writers; run again")

    def read_text(self, runbook: str, name: str) -> str:
        """A saved object's text."""
        with boundary(f"reading s3://{self.bucket}/{self._key(runbook, name)}"):
            return str(self.s3.get_object(Bucket=self.bucket, Key=self._key(runbook, name))["Body"].read().decode())

    def delete_run(self, runbook: str, run_id: str) -> int:
        """Delete ``<runbook>/<run_id>.*`` objects."""
        with boundary(f"deleting {runbook}/{run_id} in s3://{self.bucket}"):
            resp = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self._key(runbook, f"{run_id}."))
            keys = [{"Key": o["Key"]} for o in resp.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
            return len(keys)


def _loads_manifest(text: str) -> Entries | None:
    with contextlib.suppress(json.JSONDecodeError, AttributeError):
        runs = json.loads(text).get("runs")
        if isinstance(runs, list):
            return [r for r in runs if isinstance(r, dict)]
    return None


def _parse_manifest(path: Path) -> Entries | None:
    try:
        return _loads_manifest(path.read_text())
    except OSError:
        return None


def _dump_manifest(entries: Entries) -> str:
    return json.dumps({"version": 1, "runs": entries}, indent=1, default=str) + "\n"
