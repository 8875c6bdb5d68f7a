"""Run every benchmark in benches/ (``make bench``); each prints its own side-by-side table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
    only = set(sys.argv[1:])
    failed = 0
    for s in scripts:
        if only and s.stem not in only:
            continue
        print(f"\n=== {s.stem} ===", flush=True)
        failed += subprocess.run([sys.executable, str(s)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
