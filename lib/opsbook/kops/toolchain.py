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

``kops update cluster`` also needs the SHA-256 of the node binaries (nodeup,
protokube, channels) for amd64 and arm64, normally read from artifacts.k8s.io.
:func:`ensure_kops_assets` builds them from the same module into a local file
repository; ``--set spec.assets.fileRepository=file://<repo>`` points kops at it
(offline and moto use only; ``KOPS_BASE_URL`` would also demand container-image
tarballs, which cannot be built without Docker).

kops reads the hash of every architecture's binaries whatever the cluster runs (its
bootstrap script carries both and picks one on the machine), but only an instance of
that architecture ever downloads them, and on the sandbox no instance boots at all.
Cross-compiling arm64 nodeup takes 5-18 minutes on two cores, so an architecture no
plan uses gets a *stand-in*: a small script that says it is not the real binary and
fails, with its own true hash and a ``<name>.stand-in`` marker beside it. The real
binaries are built the first time a plan needs that architecture
(:func:`plan_architectures`: an arm64 instance type such as ``t4g`` or ``m7g``), with
progress lines and an estimate of how long each build takes (:func:`build_list`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from opsbook import gobuild
from opsbook.errors import ToolchainError
from opsbook.gobuild import Progress, bin_dir, build_lock
from opsbook.gobuild import go_env as _go_env
from opsbook.gobuild import run_go as _run

log = logging.getLogger(__name__)

KOPS_VERSION = "v1.33.1"  # newest tag the Go module proxy serves here (v1.34.x: 403)
KOPS_MODULE = "k8s.io/kops"
ASSET_ARCHES = ("amd64", "arm64")
ASSET_PACKAGES = {"nodeup": "cmd/nodeup", "protokube": "protokube/cmd/protokube",
                  "channels": "channels/cmd/channels"}


# Measured on the project's 2-core machine (docs/benchmarks.md "Foundation" and "Round 2").
ESTIMATES = {
    "kops": "5.8 min measured, 26 min at load 8-10",
    "amd64": "≈ 25 s for all three measured",
    "arm64/nodeup": "≈ 17.5 min measured on 2 busy cores (a cross-compile)",
    "arm64": "not measured alone; well under nodeup",
}


def estimate(arch: str, name: str) -> str:
    """How long building one node binary took here (see :data:`ESTIMATES`)."""
    return ESTIMATES.get(f"{arch}/{name}") or ESTIMATES[arch]


STAND_IN = "#!/bin/sh\n# opsbook stand-in: kops {version} {name} for linux/{arch} was not built on this machine.\n" \
    "echo 'opsbook: {name} for linux/{arch} is a stand-in; a plan with {arch} instances builds the real one' >&2\n" \
    "exit 1\n"
_ARM64_TYPE = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)\.")  # Graviton families: a1, t4g, m6g(d), c7gn, im4gn, is4gen ...


def instance_architecture(instance_type: str) -> str:
    """``arm64`` for an AWS Graviton instance type (``t4g.medium``, ``m7g.large`` ...), else ``amd64``."""
    return "arm64" if _ARM64_TYPE.match(instance_type.strip().lower()) else "amd64"


def plan_architectures(instance_types: Iterable[str]) -> tuple[str, ...]:
    """The architectures whose node binaries a cluster of these instance types runs (sorted)."""
    return tuple(sorted({instance_architecture(t) for t in instance_types if t}))


def kops_path(version: str = KOPS_VERSION) -> Path:
    """Where the pinned kops binary lives once built."""
    return bin_dir("kops", version) / "kops"


def find_go() -> str:
    """Return the ``go`` executable, or raise with what to do instead (:func:`opsbook.gobuild.find_go`)."""
    return gobuild.find_go(f"kops {KOPS_VERSION}")


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
            "(KOPS_VERSION in opsbook/kops/toolchain.py; v1.33.1 is known to be served), or install kops "
            "yourself and put it on PATH."
        )
    return Path(m.group(1))


def _wrapper(go: str, work: Path, version: str, packages: Sequence[str]) -> None:
    """Write and tidy a wrapper module in ``work`` that requires kops ``version`` and imports ``packages``."""
    (work / "go.mod").write_text("module opsbook.local/probe\n\ngo 1.24\n")
    src = _download(go, work, version)
    upstream = (src / "go.mod").read_text()
    directives = [ln for ln in upstream.splitlines() if re.match(r"^(go|godebug) \S", ln)]
    if re.search(r"^replace\b", upstream, re.M):
        log.warning("k8s.io/kops@%s has replace directives; the build may fail", version)
    lines = ["module opsbook.local/kopsbuild", "", *directives, "", f"require {KOPS_MODULE} {version}", ""]
    (work / "go.mod").write_text("\n".join(lines))
    imports = "\n".join(f'\t_ "{KOPS_MODULE}/{pkg}"' for pkg in packages)
    (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
    _run([go, "mod", "tidy"], work, f"go mod tidy for kops {version}")


def _build(go: str, work: Path, pkg: str, target: Path, what: str, goarch: str = "") -> None:
    tmp_target = target.with_suffix(".tmp")
    cmd = [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp_target), f"{KOPS_MODULE}/{pkg}"]
    if goarch:
        cmd = ["env", f"GOARCH={goarch}", *cmd]
    _run(cmd, work, what)
    tmp_target.rename(target)


def build_kops(go: str, progress: Progress, version: str = KOPS_VERSION) -> Path:
    """Build kops ``version`` into its cache directory and return the binary's path.

    Args:
        go: the ``go`` executable (see :func:`find_go`).
        progress: called with one human-readable line per step.
        version: kops tag, e.g. ``v1.33.1``.

    Raises:
        ToolchainError: the proxy does not serve that version or the build failed.
    """
    target = kops_path(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opsbook-kops-") as tmp:
        progress(f"resolving kops {version}")
        _wrapper(go, Path(tmp), version, ["cmd/kops"])
        progress(f"building kops {version} (several minutes on a small machine)")
        t0 = time.monotonic()
        _build(go, Path(tmp), "cmd/kops", target, f"building kops {version}")
        progress(f"built kops in {time.monotonic() - t0:.0f}s")
    return target


def file_repository(version: str = KOPS_VERSION) -> Path:
    """A local kops file repository (``spec.assets.fileRepository``) holding the node binaries.

    kops maps ``https://artifacts.k8s.io/binaries/kops/<v>/linux/<arch>/nodeup`` to
    ``<repository>/binaries/kops/<v>/linux/<arch>/nodeup`` and reads ``<that>.sha256``.
    """
    return bin_dir("kops", version) / "repo"


def assets_dir(version: str = KOPS_VERSION) -> Path:
    """The node binaries of ``version`` in :func:`file_repository` (``linux/<arch>/...`` + ``.sha256``)."""
    return file_repository(version) / "binaries" / "kops" / version.removeprefix("v")


def _stand_in_marker(binary: Path) -> Path:
    return binary.with_name(f"{binary.name}.stand-in")


def assets_missing(version: str = KOPS_VERSION, arches: Iterable[str] = ASSET_ARCHES) -> list[str]:
    """The ``<arch>/<binary>`` node assets kops would lack for a plan on ``arches``.

    An architecture in ``arches`` needs the real binaries (a stand-in counts as missing); any other
    needs at least a stand-in's hash, because kops reads every architecture's.
    """
    root = assets_dir(version) / "linux"
    wanted = set(arches)
    out = []
    for arch in ASSET_ARCHES:
        for name in ASSET_PACKAGES:
            binary = root / arch / name
            no_hash = not binary.with_name(f"{name}.sha256").exists()
            if no_hash or (arch in wanted and _stand_in_marker(binary).exists()):
                out.append(f"{arch}/{name}")
    return out


def build_list(
    version: str = KOPS_VERSION, arches: Iterable[str] = ("amd64",), with_kops: bool = True
) -> list[tuple[str, str]]:
    """What :func:`ensure_kops` and :func:`ensure_kops_assets` would build now, with estimates (builds nothing).

    Returns:
        ``(what, estimate)`` pairs: kops itself, each real node binary, and the stand-ins written instead
        of the architectures not in ``arches``.
    """
    out: list[tuple[str, str]] = []
    if with_kops and not _is_executable(kops_path(version)):
        out.append((f"kops {version}", ESTIMATES["kops"]))
    wanted = set(arches)
    for item in assets_missing(version, wanted):
        arch, name = item.split("/")
        if arch in wanted:
            out.append((f"{name} {version} linux/{arch}", estimate(arch, name)))
        else:
            out.append((f"{name} {version} linux/{arch} stand-in (no {arch} in the plan)", "instant"))
    return out


def build_kops_assets(
    go: str, progress: Progress, version: str = KOPS_VERSION, arches: Iterable[str] = ASSET_ARCHES
) -> Path:
    """Build nodeup, protokube and channels for ``arches`` with their ``.sha256`` files; stand-ins for the rest.

    ``kops update cluster`` needs the hash of every node binary of its version; it
    reads ``<file repository>/binaries/kops/<v>/linux/<arch>/<binary>.sha256``.
    Offline (or on moto) there is no artifacts.k8s.io, so we build the binaries
    from the same module. Slow: arm64 is a cross-compile of everything (~5 min
    idle, 17 min on a loaded 2-core machine), so an architecture not in ``arches``
    gets a stand-in (see the module's docstring) until a plan needs it.

    Returns:
        :func:`file_repository` (pass it as ``spec.assets.fileRepository``).
    """
    root = assets_dir(version)
    wanted = set(arches)
    todo = assets_missing(version, wanted)
    if not todo:
        return file_repository(version)
    real = [item for item in todo if item.split("/")[0] in wanted]
    for item in todo:
        if item not in real:
            arch, name = item.split("/")
            _write_stand_in(root / "linux" / arch / name, version, arch, name)
            progress(f"wrote a stand-in for {name} ({arch}): no {arch} instance in the plan")
    if not real:
        return file_repository(version)
    progress("building kops' node binaries: " + ", ".join(
        f"{item} ({estimate(*item.split('/'))})" for item in real))
    with tempfile.TemporaryDirectory(prefix="opsbook-kops-assets-") as tmp:
        _wrapper(go, Path(tmp), version, list(ASSET_PACKAGES.values()))
        for item in real:
            arch, name = item.split("/")
            out = root / "linux" / arch / name
            out.parent.mkdir(parents=True, exist_ok=True)
            marker = _stand_in_marker(out)
            if not _is_executable(out) or marker.exists():
                progress(f"building {name} {version} for linux/{arch} ({estimate(arch, name)})")
                t0 = time.monotonic()
                _build(go, Path(tmp), ASSET_PACKAGES[name], out, f"building {name} for {arch}", goarch=arch)
                progress(f"built {name} ({arch}) in {time.monotonic() - t0:.0f}s")
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
            out.with_name(f"{name}.sha256").write_text(digest + "\n")
            marker.unlink(missing_ok=True)
    return file_repository(version)


def _write_stand_in(out: Path, version: str, arch: str, name: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = STAND_IN.format(version=version, arch=arch, name=name).encode()
    out.write_bytes(data)
    out.chmod(0o755)
    _stand_in_marker(out).write_text("not the real binary: built when a plan needs this architecture\n")
    out.with_name(f"{name}.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")


def ensure_kops_assets(
    progress: Progress | None = None, version: str = KOPS_VERSION, arches: Iterable[str] = ("amd64",)
) -> Path:
    """Return the local file repository for ``version``: real node binaries for ``arches``, stand-ins elsewhere.

    Builds what is missing (see :func:`build_list`); a stand-in of an architecture in ``arches``
    is replaced by the real binary.
    """
    say: Progress = progress or (lambda msg: log.info("%s", msg))
    wanted = tuple(arches)
    if not assets_missing(version, wanted):
        return file_repository(version)
    with build_lock(say):
        if not assets_missing(version, wanted):  # built while we waited for the lock
            return file_repository(version)
        return build_kops_assets(find_go(), say, version, wanted)


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
    with build_lock(say):
        return _ensure_kops_locked(say, version, target)


def _ensure_kops_locked(say: Progress, version: str, target: Path) -> Path:
    if _is_executable(target) and channel_file(version).exists():  # built while we waited for the lock
        return target
    go = find_go()
    if _is_executable(target):  # binary cached, module cache cleaned: fetch the source for the channel files
        with tempfile.TemporaryDirectory(prefix="opsbook-kops-") as tmp:
            (Path(tmp) / "go.mod").write_text("module opsbook.local/probe\n\ngo 1.24\n")
            _download(go, Path(tmp), version)
        return target
    say(f"building kops {version} into {target.parent} ({ESTIMATES['kops']})")
    return build_kops(go, say, version)


def find_kops(version: str = KOPS_VERSION) -> Path | None:
    """The pinned kops if built, else a ``kops`` on PATH, else None (never builds)."""
    target = kops_path(version)
    if _is_executable(target):
        return target
    found = shutil.which("kops")
    return Path(found) if found else None
