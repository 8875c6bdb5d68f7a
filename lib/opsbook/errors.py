"""opsbook's exception tree, and the exit code each branch means.

Every error opsbook raises on purpose is an ``OpsbookError``; its message says
what went wrong *and what to do next*. Errors from botocore and the kubernetes
client are converted once, at the boundary (``raise ... from e``:
:func:`opsbook.k8s.client.boundary`, :func:`opsbook.aws.session.boundary`), and
keep what callers decide on (the HTTP status, the AWS error code), so nobody
converts again::

    OpsbookError              exit 3  execution error (a call failed, a step failed)
    ├── BadInput              exit 2  a parameter or flag is wrong; nothing was called or changed
    │   └── UnknownParameter  exit 2  a parameter the runbook does not declare
    ├── ToolchainError        exit 4  the control-plane binaries cannot be built or found
    ├── SandboxError          exit 4  the local sandbox cannot be started, stopped or reached
    ├── ClusterUnreachable    exit 4  the Kubernetes API server does not answer
    ├── ApiError(status)      exit 3  the Kubernetes API server answered an error status
    │   ├── Forbidden         exit 3  403: RBAC does not allow it (callers degrade that one check)
    │   └── Gone              exit 3  410: the resourceVersion or continue token expired (list again)
    ├── AwsError(code)        exit 3  an AWS call failed; ``code`` is botocore's error code
    │   │                             (exit 4 when the code says credentials or endpoint are missing)
    │   └── ApiUnavailable    exit 4  the API does not exist here (moto gap, region, permission)
    └── RunbookFailed         exit 3  a runbook executed but a step failed

The command line maps this tree to exit codes in one place (``opsbook.cli.main``'s
error handler, by :func:`exit_code_of`), and a run whose kernel raised one of
these keeps its class's code (:func:`exit_code_for_name`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_EXECUTION = 3
EXIT_ENVIRONMENT = 4

# botocore error codes that mean "this machine cannot talk to AWS at all", not "this call failed"
AWS_ENVIRONMENT_CODES = frozenset({"NoCredentials", "EndpointConnectionError"})


class OpsbookError(Exception):
    """Base class of every error opsbook raises on purpose."""

    exit_code: int = EXIT_EXECUTION


class BadInput(OpsbookError):
    """A parameter or flag is invalid. Raised before any API call; nothing changed."""

    exit_code = EXIT_BAD_INPUT


class UnknownParameter(BadInput):
    """A parameter that the runbook does not declare."""


class ToolchainError(OpsbookError):
    """The control-plane toolchain cannot be built or found."""

    exit_code = EXIT_ENVIRONMENT


class SandboxError(OpsbookError):
    """The local sandbox cannot be started, stopped or reached."""

    exit_code = EXIT_ENVIRONMENT


class ClusterUnreachable(OpsbookError):
    """The Kubernetes API server does not answer."""

    exit_code = EXIT_ENVIRONMENT


class ApiError(OpsbookError):
    """The Kubernetes API server answered an error; ``status`` is its HTTP status (0: no HTTP answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Forbidden(ApiError):
    """The service account may not do this (RBAC). Callers degrade the one check that needed it."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message, status)


class Gone(ApiError):
    """410 Gone: the resourceVersion (or continue token) is too old; list again."""

    def __init__(self, message: str, status: int = 410) -> None:
        super().__init__(message, status)


class AwsError(OpsbookError):
    """An AWS API call failed; ``code`` is botocore's error code (``""`` when there was none)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code
        if code in AWS_ENVIRONMENT_CODES:
            self.exit_code = EXIT_ENVIRONMENT


class ApiUnavailable(AwsError):
    """The AWS API is not available here (moto gap, region, or permission)."""

    exit_code = EXIT_ENVIRONMENT


class RunbookFailed(OpsbookError):
    """A runbook executed but one of its steps failed."""


def exit_code_of(e: BaseException) -> int:
    """The command line's exit code for ``e``: its class's (see the tree above); 3 for anything else."""
    return e.exit_code if isinstance(e, OpsbookError) else EXIT_EXECUTION


def exit_code_for_name(name: str) -> int:
    """The exit code of the opsbook error class called ``name`` (a kernel reports errors by class name); else 3."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, OpsbookError):
        return cls.exit_code
    return EXIT_EXECUTION
