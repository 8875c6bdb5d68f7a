"""Engine overhead: `opsbook run cluster-inventory` vs the same library calls in a plain `python -c`.

Both run against the same sandbox (started here if needed, torn down after).
Prints wall times side by side and the ratio; target: engine < 2x for a runbook that does real work.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from opsbook.sandbox import Sandbox

PLAIN = """
import opsbook.overview as ov
from opsbook import report
nodes = ov.nodes_table()
instances = ov.instances_table("opsbook.k8s.local", "eu-central-1", max_age_days=3650)
joined = ov.side_by_side(nodes, instances)
fig = ov.plot_nodes_by_group(nodes)
from opsbook.plots import figure_png
figure_png(fig)
ov.report_mismatches(joined, "high")
report.record("nodes", len(nodes))
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    sb = Sandbox("opsbook-bench")
    started_here = sb.state() is None
    sb.up(progress=lambda m: None)
    env = {**os.environ, **sb.activate()}
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    try:
        with tempfile.TemporaryDirectory() as out:
            engine = [
                timed(
                    [sys.executable, "-m", "opsbook.cli", "run", "cluster-inventory", "-q", "--output", out],
                    env,
                )
                for _ in range(repeats)
            ]
        plain = [timed([sys.executable, "-c", PLAIN], env) for _ in range(repeats)]
    finally:
        if started_here:
            sb.down()
    e, p = statistics.median(engine), statistics.median(plain)
    print(f"{'what':42} {'median s':>9} {'min s':>7}")
    print(f"{'opsbook run cluster-inventory (kernel+report)':42} {e:9.2f} {min(engine):7.2f}")
    print(f"{'same calls in plain python -c':42} {p:9.2f} {min(plain):7.2f}")
    print(f"ratio engine/plain: {e / p:.2f}x (target < 2x)  [{repeats} runs each]")


if __name__ == "__main__":
    main()
