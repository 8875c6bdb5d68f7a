"""The one ``s3://bucket/prefix`` parser (no client, no I/O)."""

from __future__ import annotations

from opsbook.errors import BadInput

SCHEME = "s3://"


def is_s3(url: str) -> bool:
    """Whether ``url`` names S3 (``s3://...``)."""
    return url.startswith(SCHEME)


def split_s3(url: str, what: str = "") -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``.

    Args:
        url: an ``s3://`` URL.
        what: how the error names the URL (e.g. ``--output 's3://'``); default the URL itself.

    Raises:
        BadInput: not an ``s3://`` URL, or no bucket.
    """
    name = what or repr(url)
    if not is_s3(url):
        raise BadInput(f"{name}: not an S3 URL; use s3://bucket/prefix")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise BadInput(f"{name} has no bucket: use s3://bucket/prefix, as in s3://my-bucket/opsbook-reports")
    return bucket, prefix.strip("/")


def parse_s3(url: str) -> tuple[str, str] | None:
    """``(bucket, prefix)`` of an ``s3://`` URL, or None when ``url`` is not one or names no bucket."""
    if not is_s3(url) or not url[len(SCHEME) :].partition("/")[0]:
        return None
    return split_s3(url)
