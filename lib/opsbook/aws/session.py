"""boto3 sessions and the one place botocore errors become opsbook errors (keeping botocore's code).

boto3 >= 1.28 honours ``AWS_ENDPOINT_URL``, so the same code talks to AWS or to
the sandbox's moto server depending only on the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from opsbook.errors import ApiUnavailable, AwsError

MISSING_API_CODES = {
    "InvalidAction",
    "UnknownOperationException",
    "NotImplemented",
    "UnsupportedOperation",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}


def cluster_name() -> str:
    """The kops cluster name from ``$KOPS_CLUSTER_NAME`` (a runbook's ``cluster_name`` parameter left empty)."""
    return os.environ.get("KOPS_CLUSTER_NAME", "")


def session(region: str | None = None) -> boto3.session.Session:
    """A boto3 session for ``region`` (default: the environment's)."""
    return boto3.session.Session(region_name=region)


def client(service: str, region: str | None = None, sess: boto3.session.Session | None = None) -> Any:
    """A boto3 client (endpoint from ``AWS_ENDPOINT_URL`` when set)."""
    return (sess or session(region)).client(service, region_name=region)  # type: ignore[call-overload]


@contextmanager
def boundary(what: str) -> Iterator[None]:
    """Convert botocore errors raised inside the block into opsbook errors with a next step."""
    try:
        yield
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        msg = e.response.get("Error", {}).get("Message", "")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in MISSING_API_CODES or (status == 404 and "not yet implemented" in msg.lower()):
            raise ApiUnavailable(f"{what}: this API is not available here ({code}: {msg})", code) from e
        if code in DENIED_CODES:
            raise ApiUnavailable(
                f"{what}: access denied ({code}). Add the permission from deploy/iam-readonly.json to the "
                "role that runs opsbook.",
                code,
            ) from e
        raise AwsError(f"{what}: {code}: {msg}", code) from e
    except NoCredentialsError as e:
        raise AwsError(
            f"{what}: no AWS credentials. Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or source "
            "the sandbox env file (`source $(opsbook sandbox env --path)`).",
            "NoCredentials",
        ) from e
    except EndpointConnectionError as e:
        raise AwsError(
            f"{what}: cannot reach the AWS endpoint ({e}). Is the sandbox up (`opsbook sandbox status`)?",
            "EndpointConnectionError",
        ) from e
    except BotoCoreError as e:
        raise AwsError(f"{what}: {e}", e.__class__.__name__) from e
    except NotImplementedError as e:  # moto raises this for unimplemented actions in some versions
        raise ApiUnavailable(f"{what}: not implemented by this endpoint ({e})", "NotImplemented") from e
