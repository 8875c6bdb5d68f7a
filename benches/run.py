"""Run every benchmark in benches/ (``make bench``); each prints its own side-by-side table.

``python benches/run.py [NAME ...]`` runs only those (file stems). At the end, every line that
states a ratio against its target is printed again, one summary per benchmark, with the load
average (2 shared cores: figures measured under load are upper bounds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
    only = set(sys.argv[1:])
    failed = 0
    summary: list[tuple[str, str]] = []
    for s in scripts:
        if only and s.stem not in only:
            continue
        print(f"\n=== {s.stem} === (load average {_loadavg()})", flush=True)
        proc = subprocess.Popen([sys.executable, str(s)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if "target" in line:
                summary.append((s.stem, line.strip()))
        failed += proc.wait() != 0
        if proc.returncode:
            summary.append((s.stem, f"FAILED (exit {proc.returncode})"))
    print("\n=== summary: ratios and targets ===")
    for stem, line in summary:
        print(f"{stem:24} {line}")
    return 1 if failed else 0


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
