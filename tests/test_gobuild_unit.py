"""The cache's build lock: two checkouts building at once take turns instead of breaking each other's build."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsbook import gobuild

HOLDER = """
import sys, time
from pathlib import Path
from opsbook import gobuild
with gobuild.build_lock(print):
    Path(sys.argv[1]).write_text("holding")
    while not Path(sys.argv[2]).exists():  # hold until the test has seen us waiting
        time.sleep(0.05)
    time.sleep(0.5)
    Path(sys.argv[1]).write_text("released")
"""


def test_a_second_builder_waits_names_the_holder_and_gets_the_lock_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSBOOK_CACHE", str(tmp_path / "cache"))
    state, seen = tmp_path / "state", tmp_path / "seen"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(state), str(seen)],
                              env={**os.environ, "OPSBOOK_CACHE": str(tmp_path / "cache")})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not state.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.05)
        said: list[str] = []

        def progress(msg: str) -> None:
            said.append(msg)
            seen.touch()

        with gobuild.build_lock(progress):
            assert state.read_text() == "released"  # we got the lock only after the holder let it go
        assert said == [f"waiting for the build already running (pid {holder.pid}) to finish with "
                        f"{tmp_path / 'cache' / 'bin'}"]  # fmt: skip
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0


def test_an_uncontended_lock_says_nothing_and_leaves_no_holder_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSBOOK_CACHE", str(tmp_path))
    said: list[str] = []
    with gobuild.build_lock(said.append):
        assert (tmp_path / "bin" / ".build.lock").read_text() == f"pid {os.getpid()}"
    with gobuild.build_lock(said.append):  # released: taken again at once
        pass
    assert said == [] and (tmp_path / "bin" / ".build.lock").read_text() == ""
