"""Environment checks made before a kernel starts, and the report a run leaves when they fail.

A runbook declares what it needs in its notebook metadata (``opsbook.needs``:
``kubernetes``, ``aws``). Before ``opsbook run`` starts a kernel it checks that
the API server answers (one ``/version`` request, short timeouts) and that AWS
credentials resolve (botocore's chain, with the instance-metadata lookup bounded),
both at once, so "nothing listens" is known in well under two seconds. A failure
is exit code 4 with a paragraph saying what to do, and a report marked
``environment`` beside the other runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsbook.engine.catalog import Runbook
    from opsbook.engine.notify import AlertConfig
    from opsbook.engine.run import RunResult

KUBERNETES = "kubernetes"
AWS = "aws"
NEEDS = (KUBERNETES, AWS)
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 1.5
EXIT_ENVIRONMENT = 4


@dataclass(frozen=True)
class Problem:
    """One unmet need: which (``kubernetes``/``aws``) and the fix-it paragraph."""

    need: str
    message: str


@contextlib.contextmanager
def _environ(env: Mapping[str, str] | None) -> Iterator[None]:
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


def check_kubernetes() -> Problem | None:
    """None if the API server of the current kubeconfig (or in-cluster account) answers ``/version``."""
    from kubernetes import client

    from opsbook.errors import OpsbookError
    from opsbook.k8s.client import api_client

    try:
        api = api_client()
    except OpsbookError as e:
        return Problem(KUBERNETES, str(e))
    api.configuration.retries = 0
    server = api.configuration.host
    quiet = logging.getLogger("urllib3.connectionpool")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its "Retrying ..." warning would precede our own message
    try:
        client.VersionApi(api).get_code(_request_timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    except client.exceptions.ApiException as e:
        if e.status in (401, 403):
            return Problem(
                KUBERNETES,
                f"the API server at {server} refused the kubeconfig's credentials (HTTP {e.status}). Refresh "
                "them (`kops export kubecfg --admin` for a kops cluster, or `source $(opsbook sandbox env "
                "--path)` for the sandbox) and run again.",
            )
    except Exception as e:  # urllib3/socket errors: nothing answers
        reason = " ".join(str(getattr(e, "reason", e)).split())[:200]
        return Problem(
            KUBERNETES,
            f"no Kubernetes API server answers at {server} ({reason}). Start the sandbox (`opsbook sandbox "
            "up`, then `source $(opsbook sandbox env --path)`), or for a real cluster connect your VPN/bastion "
            "and check that KUBECONFIG points at it (`kubectl cluster-info`).",
        )
    finally:
        quiet.setLevel(level)
        api.close()
    return None


def check_aws() -> Problem | None:
    """None if botocore's credential chain resolves (instance metadata bounded to about a second)."""
    import boto3

    os.environ.setdefault("AWS_METADATA_SERVICE_TIMEOUT", "1")
    os.environ.setdefault("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")
    try:
        creds = boto3.Session().get_credentials()
    except Exception as e:  # a broken profile or config file
        return Problem(AWS, f"AWS credentials could not be read ({e}). Fix ~/.aws/config or AWS_PROFILE.")
    if creds is None:
        return Problem(
            AWS,
            "no AWS credentials resolve (environment, AWS_PROFILE, ~/.aws/credentials, instance role). Set "
            "AWS_PROFILE or run `aws configure`; for the sandbox, `source $(opsbook sandbox env --path)`.",
        )
    return None


CHECKS = {KUBERNETES: check_kubernetes, AWS: check_aws}


def check_environment(needs: tuple[str, ...], env: Mapping[str, str] | None = None) -> list[Problem]:
    """Run the checks for ``needs`` (in parallel) with ``env`` added to the environment."""
    wanted = [n for n in NEEDS if n in needs]
    if not wanted:
        return []
    with _environ(env), ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        results = list(pool.map(lambda n: CHECKS[n](), wanted))
    return [p for p in results if p is not None]


def fix_it(problems: list[Problem]) -> str:
    """One paragraph for the terminal and the report."""
    return " ".join(f"{p.need.capitalize() if p.need != AWS else 'AWS'}: {p.message}" for p in problems)


def environment_report(
    runbook: Runbook,
    parameters: Mapping[str, Any],
    problems: list[Problem],
    output: str,
    env: Mapping[str, str] | None = None,
    alerts: AlertConfig | None = None,
) -> RunResult:
    """Write the report of a run stopped by the environment (status ``environment``, exit code 4)."""
    import nbformat

    from opsbook.engine import history, target
    from opsbook.engine.run import STATUS_ENVIRONMENT, RunResult, save_run
    from opsbook.engine.storage import storage_for
    from opsbook.redact import secret_values

    now = datetime.now(UTC)
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    message = fix_it(problems)
    store = storage_for(output)
    nb = nbformat.read(runbook.path, as_version=4)
    nb.cells.insert(
        0,
        nbformat.v4.new_markdown_cell(
            f"## Not run: the environment is not ready\n\n{message}\n\nNo step of this notebook ran.",
            metadata={"tags": ["remove-cell"]},
        ),
    )
    merged = {**os.environ, **(env or {})}
    result = RunResult(
        runbook=runbook.name,
        run_id=run_id,
        status=STATUS_ENVIRONMENT,
        exit_code=EXIT_ENVIRONMENT,
        started=now,
        ended=now,
        parameters=dict(parameters),
        failed_step="checking the environment",
        error=message,
        target=target.describe(parameters, merged, now),
    )
    result.locations = store.locations(runbook.name, run_id)
    secrets = secret_values(merged) + (alerts.secrets() if alerts else [])
    # an unreachable cluster is exactly what a scheduled run must tell someone about: alerts go out too
    save_run(store, nb, result, secrets, alerts, history.load(store) if alerts else [], "high")
    return result
