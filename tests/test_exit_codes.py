"""Exit codes: every class of opsbook's error tree leaves the CLI with the README's code and one paragraph.

The README's table: 2 bad input, 3 execution error, 4 environment. The CLI maps the tree in one place (the
root command group's error handler); a run whose kernel raised an opsbook error keeps that class's code.
The first table drives the real commands into each error with real causes (no cluster, no credentials, a
real moto server that answers NoSuchBucket); the second raises each class inside a runbook's kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsbook import errors

ROOT = Path(__file__).resolve().parents[1]
AWS_VARS = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
            "AWS_DEFAULT_REGION", "AWS_REGION")
TRACEBACK = "Traceback (most recent call last)"


def opsbook(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsbook.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)  # fmt: skip


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """No cluster and no AWS credentials: a fresh HOME, nothing inherited from a sandbox."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARS and k != "KUBECONFIG"}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
               AWS_EC2_METADATA_DISABLED="true", KUBECONFIG=str(home / "no-such-kubeconfig"), **extra)
    return env


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server of our own (no sandbox): AWS answers with real error codes."""
    from opsbook.sandbox import moto_server

    state = tmp_path_factory.mktemp("moto")
    _pid, port = moto_server.start(state)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto_server.stop(state)


# (error class, exit code, command line, extra environment: "moto" = credentials for our moto server)
CLI_CASES = [
    ("BadInput", 2, ["list", "--format", "yaml"], {}),
    ("UnknownParameter", 2, ["run", "validate-cluster", "-p", "no_such_parameter=1"], {}),
    ("BadInput", 2, ["run", "validate-cluster", "--output", "s3://"], {}),
    ("BadInput", 2, ["events", "archive", "--output", "s3://", "--duration", "1"], {}),
    ("BadInput", 2, ["reports", "list", "--output", "ftp://host/reports"], {}),
    ("SandboxError", 4, ["sandbox", "env", "--name", "i11-no-such-sandbox"], {}),
    ("ClusterUnreachable", 4, ["schedule", "list"], {}),
    ("ClusterUnreachable", 4, ["events", "archive", "--output", "{tmp}/events", "--duration", "1"], {}),
    ("AwsError", 4, ["reports", "list", "--output", "s3://opsbook-exit-codes/reports"], {}),  # no credentials
    ("AwsError", 3, ["reports", "list", "--output", "s3://opsbook-no-such-bucket/reports"], {"moto": "1"}),
]


@pytest.mark.parametrize(("cls", "code", "args", "extra"), CLI_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[2][:2])}" for c in CLI_CASES])  # fmt: skip
def test_cli_error_table(cls: str, code: int, args: list[str], extra: dict[str, str], tmp_path: Path,
                         request: pytest.FixtureRequest) -> None:  # fmt: skip
    env = bare_env(tmp_path)
    if extra.get("moto"):
        endpoint = request.getfixturevalue("moto_endpoint")
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="eu-central-1")  # fmt: skip
    r = opsbook(*[a.replace("{tmp}", str(tmp_path)) for a in args], env=env)
    assert r.returncode == code, (cls, r.stdout, r.stderr)
    assert errors.exit_code_for_name(cls) == code or cls == "AwsError"  # AwsError's code depends on its `code`
    assert TRACEBACK not in r.stderr + r.stdout, r.stderr
    paragraphs = [p for p in r.stderr.strip().split("\n\n") if p.strip()]
    assert len(paragraphs) == 1 and r.stderr.lstrip().startswith("error:"), r.stderr


TREE = {
    "OpsbookError": 3, "BadInput": 2, "UnknownParameter": 2, "ToolchainError": 4, "SandboxError": 4,
    "ClusterUnreachable": 4, "ApiError": 3, "Forbidden": 3, "Gone": 3, "AwsError": 3, "ApiUnavailable": 4,
    "RunbookFailed": 3,
}  # fmt: skip


def test_the_tree_is_the_docstrings_tree() -> None:
    classes = {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.OpsbookError)}
    assert classes == set(TREE)
    for name, code in TREE.items():
        assert errors.exit_code_for_name(name) == code
        assert f"{name}" in (errors.__doc__ or "") and f"exit {code}" in (errors.__doc__ or "")
    assert errors.exit_code_for_name("ZeroDivisionError") == 3
    assert errors.AwsError("x", "NoCredentials").exit_code == 4 and errors.AwsError("x", "NoSuchBucket").exit_code == 3
    assert errors.Forbidden("x").status == 403 and errors.Gone("x").status == 410


KERNEL_CASES = ["BadInput", "ClusterUnreachable", "Forbidden", "Gone", "AwsError", "ApiUnavailable"]


@pytest.mark.notebook
@pytest.mark.parametrize("cls", KERNEL_CASES)
def test_an_error_raised_in_the_kernel_keeps_its_exit_code(cls: str, tmp_path: Path) -> None:
    nb = ROOT / "tests" / "notebooks" / "raises.ipynb"
    r = opsbook("run", str(nb), "-p", f"error={cls}", "--output", str(tmp_path), "--format", "json",
                env=bare_env(tmp_path))  # fmt: skip
    assert r.returncode == TREE[cls], (r.stdout, r.stderr)
    assert TRACEBACK not in r.stderr, r.stderr
    summary = json.loads(r.stdout)
    assert summary["status"] == "failed" and summary["exit_code"] == TREE[cls]
    assert summary["failed_step"] == "Raise it" and summary["error"].startswith(f"{cls}: ")
