"""kops' node binaries: arm64 is built only when a plan has arm64 instance types; stand-ins otherwise.

Real files in a private cache directory (``OPSBOOK_CACHE``); nothing is compiled: the amd64
binaries are placed as a finished build would leave them, and only stand-ins are written.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from opsbook.kops import toolchain as kt

VERSION = "v1.33.1"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSBOOK_CACHE", str(tmp_path))
    return tmp_path


def _place_built(arch: str) -> None:
    """Leave ``arch``'s binaries as build_kops_assets does: the binary and its .sha256."""
    for name in kt.ASSET_PACKAGES:
        out = kt.assets_dir(VERSION) / "linux" / arch / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(f"real {name} {arch}".encode())
        out.chmod(0o755)
        out.with_name(f"{name}.sha256").write_text(hashlib.sha256(out.read_bytes()).hexdigest() + "\n")


def test_arm64_instance_types_are_recognised() -> None:
    arm = ["t4g.medium", "m6g.large", "m6gd.xlarge", "c7gn.2xlarge", "a1.large", "im4gn.large", "is4gen.xlarge",
           "r8g.large", "x2gd.medium", "g5g.xlarge", "hpc7g.4xlarge"]
    intel = ["t2.medium", "m3.medium", "t3.micro", "m5.large", "m6i.large", "m6a.large", "c5n.large", "g5.xlarge",
             "p4d.24xlarge", "inf2.xlarge", "r5d.large"]
    assert {t: kt.instance_architecture(t) for t in arm} == dict.fromkeys(arm, "arm64")
    assert {t: kt.instance_architecture(t) for t in intel} == dict.fromkeys(intel, "amd64")
    assert kt.plan_architectures(["t3.medium", "m3.medium", ""]) == ("amd64",)
    assert kt.plan_architectures(["m7g.large", "t3.micro"]) == ("amd64", "arm64")


def test_empty_cache_lists_kops_amd64_and_arm64_stand_ins(cache: Path) -> None:
    todo = dict(kt.build_list(VERSION, arches=("amd64",)))
    assert f"kops {VERSION}" in todo
    for name in kt.ASSET_PACKAGES:
        assert f"{name} {VERSION} linux/amd64" in todo
        assert todo[f"{name} {VERSION} linux/arm64 stand-in (no arm64 in the plan)"] == "instant"
        assert f"{name} {VERSION} linux/arm64" not in todo
    with_arm = dict(kt.build_list(VERSION, arches=("amd64", "arm64"), with_kops=False))
    assert f"kops {VERSION}" not in with_arm
    assert "17.5 min" in with_arm[f"nodeup {VERSION} linux/arm64"]
    assert not any("stand-in" in what for what in with_arm)


def test_stand_ins_satisfy_kops_for_an_amd64_plan_but_not_an_arm64_one(cache: Path) -> None:
    _place_built("amd64")
    assert kt.assets_missing(VERSION, ("amd64",)) == [f"arm64/{n}" for n in kt.ASSET_PACKAGES]
    said: list[str] = []
    repo = kt.build_kops_assets("no-go-needed", said.append, VERSION, ("amd64",))  # only stand-ins to write
    assert repo == kt.file_repository(VERSION)
    assert len(said) == 3 and all("stand-in" in s for s in said)
    assert kt.assets_missing(VERSION, ("amd64",)) == []
    assert kt.assets_missing(VERSION, ("amd64", "arm64")) == [f"arm64/{n}" for n in kt.ASSET_PACKAGES]
    nodeup = kt.assets_dir(VERSION) / "linux" / "arm64" / "nodeup"
    # kops reads a true hash of what is in the repository; run, the stand-in says what it is and fails
    assert nodeup.with_name("nodeup.sha256").read_text().strip() == hashlib.sha256(nodeup.read_bytes()).hexdigest()
    ran = subprocess.run([str(nodeup)], capture_output=True, text=True, check=False)
    assert ran.returncode == 1 and "stand-in" in ran.stderr
    # the amd64 binaries were left alone
    amd = kt.assets_dir(VERSION) / "linux" / "amd64" / "nodeup"
    assert amd.read_bytes() == b"real nodeup amd64"
    assert dict(kt.build_list(VERSION, arches=("amd64", "arm64"), with_kops=False)).keys() == {
        f"{n} {VERSION} linux/arm64" for n in kt.ASSET_PACKAGES}


def test_real_binaries_are_never_replaced_by_stand_ins(cache: Path) -> None:
    _place_built("amd64")
    _place_built("arm64")
    assert kt.assets_missing(VERSION, ("amd64",)) == []
    assert kt.build_list(VERSION, arches=("amd64",), with_kops=False) == []
    kt.build_kops_assets("no-go-needed", lambda m: None, VERSION, ("amd64",))
    assert (kt.assets_dir(VERSION) / "linux" / "arm64" / "nodeup").read_bytes() == b"real nodeup arm64"
    assert not list(kt.assets_dir(VERSION).rglob("*.stand-in"))
