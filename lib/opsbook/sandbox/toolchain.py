"""Build the local control-plane toolchain from the Go module proxy.

The sandbox runs a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) plus kwok's simulated nodes, started by
``kwokctl --runtime binary``. Nothing is downloaded from release pages: every
binary is compiled from source fetched through the Go module proxy, pinned to
the versions below, and cached outside the repository under
``~/.cache/opsbook/bin/<component>-<version>/`` (``OPSBOOK_CACHE`` overrides
the root). A binary that is already there is reused.

``go install`` refuses ``k8s.io/kubernetes`` because its go.mod points the
staging modules (k8s.io/api, client-go, ...) at ``./staging``. We build from a
small wrapper module that requires ``k8s.io/kubernetes vX`` and replaces every
staging module listed as ``v0.0.0`` with its published ``v0.Y.Z`` twin; the list
is generated from the downloaded go.mod, never hand-written. etcd's main
package lives in a module with local replaces too, so it gets the same trick.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from opsbook import gobuild
from opsbook.errors import ToolchainError
from opsbook.gobuild import Progress, bin_dir, build_lock, cache_root
from opsbook.gobuild import go_env as _go_env
from opsbook.gobuild import run_go as _run

log = logging.getLogger(__name__)

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"  # 3.6.x pairs with Kubernetes 1.34+
KWOK_VERSION = "v0.8.0"  # go.mod says go 1.26.0

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


@dataclass(frozen=True)
class Toolchain:
    """Paths of the built binaries used by the sandbox."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    kwokctl: Path

    @classmethod
    def expected(cls) -> Toolchain:
        """The paths where the pinned binaries live once built."""
        kube = bin_dir("kubernetes", KUBERNETES_VERSION)
        kwok = bin_dir("kwok", KWOK_VERSION)
        return cls(
            kube_apiserver=kube / "kube-apiserver",
            kube_controller_manager=kube / "kube-controller-manager",
            kube_scheduler=kube / "kube-scheduler",
            kubectl=kube / "kubectl",
            etcd=bin_dir("etcd", ETCD_VERSION) / "etcd",
            kwok=kwok / "kwok",
            kwokctl=kwok / "kwokctl",
        )

    def paths(self) -> dict[str, Path]:
        """Binary name to path."""
        return {
            "kube-apiserver": self.kube_apiserver,
            "kube-controller-manager": self.kube_controller_manager,
            "kube-scheduler": self.kube_scheduler,
            "kubectl": self.kubectl,
            "etcd": self.etcd,
            "kwok": self.kwok,
            "kwokctl": self.kwokctl,
        }

    def missing(self) -> list[str]:
        """Names of binaries that are not built yet."""
        return [name for name, p in self.paths().items() if not _is_executable(p)]


def _is_executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def find_go() -> str:
    """Return the ``go`` executable, or raise with what to do instead (:func:`opsbook.gobuild.find_go`)."""
    return gobuild.find_go(f"kwok {KWOK_VERSION} and etcd {ETCD_VERSION}")


def staging_replaces(kubernetes_gomod: str, version: str) -> list[tuple[str, str]]:
    """Staging modules required at v0.0.0 and the published version to use instead.

    Args:
        kubernetes_gomod: text of k8s.io/kubernetes's go.mod.
        version: the Kubernetes version, e.g. ``v1.34.4`` (maps to ``v0.34.4``).

    Returns:
        ``(module, version)`` pairs, one per staging module.
    """
    staging_version = "v0." + version.removeprefix("v").split(".", 1)[1]
    mods = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.\-/]+) v0\.0\.0\s*$", kubernetes_gomod, re.M)))
    return [(m, staging_version) for m in mods]


def _upstream_directives(gomod: str) -> list[str]:
    """The ``go`` and ``godebug`` lines of an upstream go.mod, to copy into the wrapper."""
    keep = [ln for ln in gomod.splitlines() if re.match(r"^(go|godebug) \S", ln)]
    return keep


def _download_gomod(go: str, work: Path, module: str, version: str) -> str:
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        cwd=work,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r'"GoMod":\s*"([^"]+)"', proc.stdout)
    if proc.returncode != 0 or not m:
        raise ToolchainError(
            f"could not download {module}@{version} from the Go module proxy "
            f"({os.environ.get('GOPROXY', 'default proxy')}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return Path(m.group(1)).read_text()


def _ldflags_kubernetes(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    build_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={build_date}",
        ]
    return " ".join(flags)


def build_kubernetes(go: str, progress: Progress, names: Iterable[str] = KUBE_BINARIES) -> None:
    """Build kube-apiserver, kube-controller-manager, kube-scheduler and kubectl."""
    out = bin_dir("kubernetes", KUBERNETES_VERSION)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opsbook-k8s-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module opsbook.local/probe\n\ngo 1.24\n")
        upstream = _download_gomod(go, work, "k8s.io/kubernetes", KUBERNETES_VERSION)
        reps = staging_replaces(upstream, KUBERNETES_VERSION)
        if not reps:
            raise ToolchainError(
                f"found no staging modules in k8s.io/kubernetes@{KUBERNETES_VERSION}'s go.mod"
            )
        lines = ["module opsbook.local/k8sbuild", "", *_upstream_directives(upstream)]
        lines += ["", f"require k8s.io/kubernetes {KUBERNETES_VERSION}", "", "replace ("]
        lines += [f"\t{m} => {m} {v}" for m, v in reps] + [")", ""]
        (work / "go.mod").write_text("\n".join(lines))
        imports = "\n".join(f'\t_ "k8s.io/kubernetes/cmd/{n}"' for n in KUBE_BINARIES)
        (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
        progress(f"resolving k8s.io/kubernetes {KUBERNETES_VERSION} ({len(reps)} staging modules replaced)")
        _run([go, "mod", "tidy"], work, "go mod tidy for k8s.io/kubernetes")
        for name in names:
            target = out / name
            if _is_executable(target):
                continue
            progress(f"building {name} {KUBERNETES_VERSION}")
            t0 = time.monotonic()
            tmp_target = target.with_suffix(".tmp")
            _run(
                [
                    go,
                    "build",
                    "-trimpath",
                    "-ldflags",
                    _ldflags_kubernetes(KUBERNETES_VERSION),
                    "-o",
                    str(tmp_target),
                    f"k8s.io/kubernetes/cmd/{name}",
                ],
                work,
                f"building {name}",
            )
            tmp_target.rename(target)
            progress(f"built {name} in {time.monotonic() - t0:.0f}s")


def build_etcd(go: str, progress: Progress) -> None:
    """Build etcd from go.etcd.io/etcd/server/v3 via a one-file main package."""
    out = bin_dir("etcd", ETCD_VERSION)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "etcd"
    with tempfile.TemporaryDirectory(prefix="opsbook-etcd-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module opsbook.local/probe\n\ngo 1.24\n")
        upstream = _download_gomod(go, work, "go.etcd.io/etcd/server/v3", ETCD_VERSION)
        # server/v3's own go.mod replaces its sibling modules with ../paths; pin them instead.
        siblings = sorted(set(re.findall(r"^\s*(go\.etcd\.io/etcd/[\w/]+/v3) v3\.\S+", upstream, re.M)))
        lines = ["module opsbook.local/etcdbuild", "", *_upstream_directives(upstream)]
        lines += ["", f"require go.etcd.io/etcd/server/v3 {ETCD_VERSION}", "", "replace ("]
        lines += [f"\t{m} => {m} {ETCD_VERSION}" for m in siblings] + [")", ""]
        (work / "go.mod").write_text("\n".join(lines))
        (work / "main.go").write_text(
            'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
            "func main() { etcdmain.Main(os.Args) }\n"
        )
        progress(f"resolving etcd {ETCD_VERSION}")
        _run([go, "mod", "tidy"], work, "go mod tidy for etcd")
        progress(f"building etcd {ETCD_VERSION}")
        t0 = time.monotonic()
        _run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(target.with_suffix(".tmp")), "."],
            work,
            "building etcd",
        )
        target.with_suffix(".tmp").rename(target)
        progress(f"built etcd in {time.monotonic() - t0:.0f}s")


def build_kwok(go: str, progress: Progress) -> None:
    """``go install`` kwok and kwokctl at the pinned tag."""
    out = bin_dir("kwok", KWOK_VERSION)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("kwok", "kwokctl"):
        if _is_executable(out / name):
            continue
        progress(f"building {name} {KWOK_VERSION}")
        t0 = time.monotonic()
        env = _go_env()
        env["GOBIN"] = str(out)
        ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.removeprefix('v')}"
        proc = subprocess.run(
            [go, "install", "-trimpath", "-ldflags", ldflags, f"sigs.k8s.io/kwok/cmd/{name}@{KWOK_VERSION}"],
            cwd=out,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ToolchainError(f"go install {name}@{KWOK_VERSION} failed:\n{proc.stderr.strip()[-2000:]}")
        progress(f"built {name} in {time.monotonic() - t0:.0f}s")


def ensure_toolchain(progress: Progress | None = None) -> Toolchain:
    """Build whatever pinned binary is missing and return the toolchain.

    Args:
        progress: called with one human-readable line per step.

    Raises:
        ToolchainError: Go is missing/too old or a build failed.
    """
    say: Progress = progress or (lambda msg: log.info("%s", msg))
    tc = Toolchain.expected()
    if not tc.missing():
        return tc
    with build_lock(say):
        missing = tc.missing()  # again: a build we waited for may have made them
        if not missing:
            return tc
        go = find_go()
        say(f"building missing binaries into {cache_root() / 'bin'}: {', '.join(missing)}")
        t0 = time.monotonic()
        kube_missing = [n for n in KUBE_BINARIES if n in missing]
        if kube_missing:
            build_kubernetes(go, say, kube_missing)
        if "etcd" in missing:
            build_etcd(go, say)
        if "kwok" in missing or "kwokctl" in missing:
            build_kwok(go, say)
    still = tc.missing()
    if still:
        raise ToolchainError(f"built the toolchain but these are still missing: {', '.join(still)}")
    say(f"toolchain ready in {time.monotonic() - t0:.0f}s")
    return tc
