"""Engine overhead: `opsbook run cluster-inventory` vs the same library calls in a plain `python -c`.

Both sides are whole fresh processes against the same sandbox (started here if needed, torn down
after; ``OPSBOOK_BENCH_SANDBOX`` names it), run interleaved (A, B, A, B ...) so background load hits
both alike. Round 1 is reported apart (cold: first process after the sandbox came up); the others
are "warm". The difference of the warm medians is the engine's fixed cost per run (kernel start,
notebook handling, HTML report); the runbook at scale is in ``validate_large.py``.
Targets: engine <= 2x plain on this small runbook, fixed cost <= 1.5 s.
``BENCH_BASELINE=/path/to/other/lib`` adds a third side, interleaved: the engine of another checkout
(e.g. ``git archive`` of the commit before a change), so a before/after is measured under the same load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from opsbook.sandbox import Sandbox

# The notebook's calls (notebooks/cluster-inventory.ipynb), tables to HTML and the figure to PNG
# as the kernel's display does.
PLAIN = """
from opsbook.runbooks import cluster_inventory as ov
from opsbook import report
from opsbook.aws import session
from opsbook.plots import figure_png
nodes = ov.nodes_table()
nodes.to_html()
instances = ov.instances_table(session.cluster_name(), None, max_age_days=3650)
instances.to_html()
joined = ov.side_by_side(nodes, instances)
joined.to_html()
bool(joined["joined"].all())
figure_png(ov.plot_nodes_by_group(nodes))
mismatches = ov.mismatch_findings(joined, "high")
report.findings(mismatches)
report.record("nodes", len(nodes))
report.record("instances", len(instances))
report.record("mismatches", len(mismatches))
"""


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall time of ``cmd`` as a fresh process, and the load average right after."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:5]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return took, loadavg()


def main() -> None:
    sb = Sandbox(os.environ.get("OPSBOOK_BENCH_SANDBOX", "opsbook-bench"))
    started_here = sb.state() is None
    sb.up(progress=lambda m: None)
    env = {**os.environ, **sb.activate(), "PYTHONWARNINGS": "ignore"}
    repeats = int(os.environ.get("BENCH_REPEATS", "6"))
    baseline_lib = os.environ.get("BENCH_BASELINE")  # another checkout's lib/: its engine runs interleaved too
    engine: list[tuple[float, str]] = []
    plain: list[tuple[float, str]] = []
    baseline: list[tuple[float, str]] = []
    try:
        with tempfile.TemporaryDirectory() as out:
            run = [sys.executable, "-m", "opsbook.cli", "run", "cluster-inventory", "-q", "--output", out]
            for _ in range(repeats):
                engine.append(timed(run, env))
                plain.append(timed([sys.executable, "-c", PLAIN], env))
                if baseline_lib:
                    baseline.append(timed(run, {**env, "PYTHONPATH": baseline_lib}))
    finally:
        if started_here:
            sb.down()
    e_warm = statistics.median(t for t, _ in engine[1:] or engine)
    p_warm = statistics.median(t for t, _ in plain[1:] or plain)
    print(f"{repeats} interleaved rounds, each side a fresh process; load average now {loadavg()}")
    print(f"{'what':46} {'round 1 s':>9} {'warm med s':>10} {'warm min s':>10}")
    for label, runs, med in (
        ("opsbook run cluster-inventory (kernel+report)", engine, e_warm),
        ("same calls in plain python -c", plain, p_warm),
    ):
        print(f"{label:46} {runs[0][0]:9.2f} {med:10.2f} {min(t for t, _ in runs[1:] or runs):10.2f}")
    if baseline:
        b_warm = statistics.median(t for t, _ in baseline[1:] or baseline)
        print(f"{'baseline engine (BENCH_BASELINE)':46} {baseline[0][0]:9.2f} {b_warm:10.2f} "
              f"{min(t for t, _ in baseline[1:] or baseline):10.2f}")
        print(f"baseline fixed cost {b_warm - p_warm:.2f} s, ratio {b_warm / p_warm:.2f}x; runs "
              f"{[round(t, 2) for t, _ in baseline]}")
    fixed = e_warm - p_warm
    ratio = e_warm / p_warm
    print(f"engine fixed cost (warm medians' difference): {fixed:.2f} s (target <= 1.5 s: "
          f"{'met' if fixed <= 1.5 else 'NOT met'})")
    print(f"ratio engine/plain (warm): {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'NOT met'}); "
          f"round 1: {engine[0][0] / plain[0][0]:.2f}x")
    print(f"engine runs {[round(t, 2) for t, _ in engine]}, plain runs {[round(t, 2) for t, _ in plain]}")
    print(f"load averages (1/5/15 min) after each engine run: {[la for _, la in engine]}")


if __name__ == "__main__":
    main()
