"""Build the pinned kops binary from the Go module proxy, cached like the control plane.

kops is compiled from source fetched through the Go module proxy and cached
under ``~/.cache/opsbook/bin/kops-<version>/kops`` (``OPSBOOK_CACHE`` moves the
root). kops 1.30+ has no ``replace`` directives, so a plain build works, but
``go install k8s.io/kops/cmd/kops@<v>`` asks the proxy for the module's version
list (to look for deprecation notices) and some proxies refuse that list (403)
while serving the version itself. So we build from a one-file wrapper module
that requires the exact version, which never asks for the list.

The module cache also holds the channel files shipped with that kops version;
:func:`channel_file` points ``kops --channel`` at the stable one so kops works
offline (``file://<module cache>/k8s.io/kops@<v>/channels/stable``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from opsbook.errors import ToolchainError
from opsbook.sandbox.toolchain import KOPS_VERSION, Progress, _go_env, _run, bin_dir, find_go

log = logging.getLogger(__name__)

KOPS_MODULE = "k8s.io/kops"


def kops_path(version: str = KOPS_VERSION) -> Path:
    """Where the pinned kops binary lives once built."""
    return bin_dir("kops", version) / "kops"


def _is_executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def module_dir(version: str = KOPS_VERSION, go: str | None = None) -> Path:
    """The kops source directory in the Go module cache (may not exist yet)."""
    gomodcache = os.environ.get("GOMODCACHE")
    if not gomodcache:
        go = go or shutil.which("go")
        if go:
            out = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=False)
            gomodcache = out.stdout.strip()
    if not gomodcache:
        gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
        gomodcache = str(Path(gopath) / "pkg" / "mod")
    return Path(gomodcache) / f"{KOPS_MODULE}@{version}"


def channel_file(version: str = KOPS_VERSION, channel: str = "stable") -> Path:
    """The channel file shipped with kops ``version`` (``stable`` or ``alpha``) in the module cache."""
    return module_dir(version) / "channels" / channel


def _download(go: str, work: Path, version: str) -> Path:
    proc = subprocess.run([go, "mod", "download", "-json", f"{KOPS_MODULE}@{version}"], cwd=work,
                          env=_go_env(), capture_output=True, text=True, check=False)
    m = re.search(r'"Dir":\s*"([^"]+)"', proc.stdout)
    if proc.returncode != 0 or not m:
        err = re.search(r'"Error":\s*"([^"]+)"', proc.stdout)
        detail = err.group(1) if err else (proc.stderr.strip() or proc.stdout.strip())
        raise ToolchainError(
            f"could not download {KOPS_MODULE}@{version} from the Go module proxy "
            f"({os.environ.get('GOPROXY', 'default proxy')}): {detail}. Pin a version the proxy serves "
            "(KOPS_VERSION in opsbook/sandbox/toolchain.py; v1.33.1 is known to be served), or install kops "
            "yourself and put it on PATH."
        )
    return Path(m.group(1))


def build_kops(go: str, progress: Progress, version: str = KOPS_VERSION) -> Path:
    """Build kops ``version`` into its cache directory and return the binary's path.

    Args:
        go: the ``go`` executable (see :func:`opsbook.sandbox.toolchain.find_go`).
        progress: called with one human-readable line per step.
        version: kops tag, e.g. ``v1.33.1``.

    Raises:
        ToolchainError: the proxy does not serve that version or the build failed.
    """
    target = kops_path(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opsbook-kops-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module opsbook.local/probe\n\ngo 1.24\n")
        src = _download(go, work, version)
        upstream = (src / "go.mod").read_text()
        directives = [ln for ln in upstream.splitlines() if re.match(r"^(go|godebug) \S", ln)]
        if re.search(r"^replace\b", upstream, re.M):
            log.warning("k8s.io/kops@%s has replace directives; the build may fail", version)
        lines = ["module opsbook.local/kopsbuild", "", *directives, "", f"require {KOPS_MODULE} {version}", ""]
        (work / "go.mod").write_text("\n".join(lines))
        (work / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{KOPS_MODULE}/cmd/kops"\n')
        progress(f"resolving kops {version}")
        _run([go, "mod", "tidy"], work, f"go mod tidy for kops {version}")
        progress(f"building kops {version} (several minutes on a small machine)")
        t0 = time.monotonic()
        tmp_target = target.with_suffix(".tmp")
        _run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp_target), f"{KOPS_MODULE}/cmd/kops"],
             work, f"building kops {version}")
        tmp_target.rename(target)
        progress(f"built kops in {time.monotonic() - t0:.0f}s")
    return target


def ensure_kops(progress: Progress | None = None, version: str = KOPS_VERSION) -> Path:
    """Return the pinned kops binary, building it first if it is missing.

    Args:
        progress: called with one human-readable line per step.
        version: kops tag, e.g. ``v1.33.1``.

    Raises:
        ToolchainError: Go is missing/too old, the version is not served, or the build failed.
    """
    say: Progress = progress or (lambda msg: log.info("%s", msg))
    target = kops_path(version)
    if _is_executable(target) and channel_file(version).exists():
        return target
    go = find_go()
    if _is_executable(target):  # binary cached, module cache cleaned: fetch the source for the channel files
        with tempfile.TemporaryDirectory(prefix="opsbook-kops-") as tmp:
            (Path(tmp) / "go.mod").write_text("module opsbook.local/probe\n\ngo 1.24\n")
            _download(go, Path(tmp), version)
        return target
    say(f"building kops {version} into {target.parent}")
    return build_kops(go, say, version)


def find_kops(version: str = KOPS_VERSION) -> Path | None:
    """The pinned kops if built, else a ``kops`` on PATH, else None (never builds)."""
    target = kops_path(version)
    if _is_executable(target):
        return target
    found = shutil.which("kops")
    return Path(found) if found else None
