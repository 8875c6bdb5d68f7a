"""CLI conventions: --version, completion, --format json, and exit 4 before any kernel starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


def opsbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsbook.cli", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=300, cwd=ROOT)


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """No cluster and no AWS credentials: a fresh HOME, nothing inherited from the sandbox."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARS and k != "KUBECONFIG"}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
               AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


def test_version_and_completion() -> None:
    from opsbook import __version__

    r = opsbook("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"opsbook {__version__}"
    exe = str(Path(sys.executable).parent / "opsbook")
    r = subprocess.run([exe, "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "_OPSBOOK_COMPLETE=complete_bash" in r.stdout
    env = {**os.environ, "_OPSBOOK_COMPLETE": "complete_bash", "COMP_WORDS": "opsbook describe val", "COMP_CWORD": "2"}
    r = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.split() == ["validate-cluster"]


def test_drill_help_names_every_drill() -> None:
    from opsbook.sandbox.drills import DRILLS

    r = opsbook("drill", "--help", env={**os.environ, "COLUMNS": "400"})
    assert r.returncode == 0
    missing = [d for d in DRILLS if d not in r.stdout]
    assert not missing, f"`opsbook drill --help` does not name {missing}"


def test_list_and_describe_as_json() -> None:
    r = opsbook("list", "--format", "json")
    assert r.returncode == 0, r.stderr
    books = {b["name"]: b for b in json.loads(r.stdout)}
    assert {"validate-cluster", "outage-analysis", "cluster-inventory", "cost-credit-review"} <= set(books)
    wait = next(p for p in books["validate-cluster"]["parameters"] if p["name"] == "wait")
    assert wait == {"name": "wait", "type": "int [0..7200]", "default": 0, "required": False,
                    "help": wait["help"]} and "seconds" in wait["help"]
    assert books["validate-cluster"]["needs"] == ["kubernetes", "aws"] and books["create-cluster"]["mutates"] is True
    r = opsbook("describe", "outage-analysis", "--format", "json")
    d = json.loads(r.stdout)
    assert d["name"] == "outage-analysis" and d["description"].startswith("# Outage analysis")
    assert [p["name"] for p in d["parameters"]][:4] == ["title", "start", "end", "last_hours"]
    assert opsbook("list", "--format", "yaml").returncode == 2


def test_no_kubeconfig_is_exit_4_with_an_environment_report(tmp_path: Path) -> None:
    env = bare_env(tmp_path, KUBECONFIG=str(tmp_path / "no-such-kubeconfig"))
    r = opsbook("run", "validate-cluster", "--output", str(tmp_path / "reports"), "--format", "json", env=env)
    assert r.returncode == 4, r.stderr
    text = " ".join(r.stderr.split())
    assert "no usable Kubernetes configuration" in text and "opsbook sandbox up" in text
    assert "no AWS credentials resolve" in text
    summary = json.loads(r.stdout)
    assert summary["status"] == "environment" and summary["exit_code"] == 4 and summary["findings"] == []
    saved = json.loads(Path(summary["files"]["json"]).read_text())
    assert saved["status"] == "environment" and saved["error"] == summary["error"]
    html = Path(summary["files"]["html"]).read_text()
    assert "ENVIRONMENT" in html and "The environment is not ready; nothing ran." in html
    assert summary["run_id"] in (tmp_path / "reports" / "index.html").read_text()


def test_nothing_listening_is_exit_4_naming_the_server(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "contexts:\n- name: gone\n  context: {cluster: c, user: u}\n"
        f"clusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\n"
        "users:\n- name: u\n  user: {token: t}\n"
    )
    env = bare_env(tmp_path, KUBECONFIG=str(kc), AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="s" * 40)
    r = opsbook("run", "cluster-inventory", "--output", str(tmp_path / "reports"), env=env)
    assert r.returncode == 4, r.stderr
    text = " ".join(r.stderr.split())
    assert f"no Kubernetes API server answers at https://127.0.0.1:{port}" in text
    assert "AWS" not in text.split("answers at")[0]  # credentials resolved: only the cluster is named
    (summary,) = [json.loads(p.read_text()) for p in (tmp_path / "reports" / "cluster-inventory").glob("*.json")]
    assert summary["status"] == "environment" and summary["target"]["context"] == "gone"
    assert "s" * 40 not in (tmp_path / "reports" / "cluster-inventory" / f"{summary['run_id']}.html").read_text()


def test_lab_checks_parameters_like_run(tmp_path: Path) -> None:
    r = opsbook("lab", "validate-cluster", "-p", "wait=soon", "--workspace", str(tmp_path), "--no-browser")
    assert r.returncode == 2 and "wait" in r.stderr
    assert list(tmp_path.iterdir()) == []
    r = opsbook("lab", "validate-cluster", "--workspace", str(ROOT / "notebooks" / "scratch"), "--no-browser")
    assert r.returncode == 2 and "inside the tracked runbooks" in " ".join(r.stderr.split())
    assert not (ROOT / "notebooks" / "scratch").exists()
