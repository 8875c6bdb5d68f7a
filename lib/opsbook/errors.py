"""opsbook's exception tree.

Every error opsbook raises on purpose is an ``OpsbookError``; its message says
what went wrong *and what to do next*. Errors from botocore and the kubernetes
client are converted once, at the boundary (``raise ... from e``)::

    OpsbookError
    ├── BadInput              a parameter or flag is wrong; nothing was called or changed
    │   └── UnknownParameter  a parameter the runbook does not declare
    ├── ToolchainError        the control-plane binaries cannot be built or found
    ├── SandboxError          the local sandbox cannot be started, stopped or reached
    ├── ClusterUnreachable    the Kubernetes API server does not answer
    ├── AwsError              an AWS call failed (credentials, permission, missing API)
    │   └── ApiUnavailable    the API does not exist here (moto gap, region, permission)
    └── RunbookFailed         a runbook executed but a step failed
"""

from __future__ import annotations


class OpsbookError(Exception):
    """Base class of every error opsbook raises on purpose."""


class BadInput(OpsbookError):
    """A parameter or flag is invalid. Raised before any API call; nothing changed."""


class UnknownParameter(BadInput):
    """A parameter that the runbook does not declare."""


class ToolchainError(OpsbookError):
    """The control-plane toolchain cannot be built or found."""


class SandboxError(OpsbookError):
    """The local sandbox cannot be started, stopped or reached."""


class ClusterUnreachable(OpsbookError):
    """The Kubernetes API server does not answer."""


class AwsError(OpsbookError):
    """An AWS API call failed."""


class ApiUnavailable(AwsError):
    """The AWS API is not available here (moto gap, region, or permission)."""


class RunbookFailed(OpsbookError):
    """A runbook executed but one of its steps failed."""
