"""`make screenshots`: the README's pictures, from real sandbox runs, taken in Debian's chromium.

Starts (or reuses) the sandbox ``opsbook-screenshots``, runs validate-cluster, replays the
node-lost drill and runs outage-analysis over it, then saves
``docs/img/validate-cluster-report.png`` (the top of the report) and
``docs/img/outage-analysis-swimlanes.png`` (the swimlane plot). Tests never write docs/img.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from browser import chromium  # noqa: E402
from opsbook.engine.catalog import find_runbook  # noqa: E402
from opsbook.engine.params import parse_parameters  # noqa: E402
from opsbook.engine.run import run_runbook  # noqa: E402
from opsbook.k8s.client import api_client  # noqa: E402
from opsbook.sandbox import Sandbox, drills  # noqa: E402


def run(name: str, raw: dict[str, str], out: Path) -> str:
    rb = find_runbook(name)
    result = run_runbook(rb, parse_parameters(rb.parameters, raw, rb.name), output=out, timeout=900)
    print(f"{name}: {result.status} in {result.duration_s:.0f}s -> {result.locations['html']}", flush=True)
    if result.status not in ("ok", "findings"):
        raise SystemExit(f"{name} did not run: {result.failed_step}: {result.error}")
    return result.locations["html"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--sandbox", default=os.environ.get("OPSBOOK_SCREENSHOT_SANDBOX", "opsbook-screenshots"))
    ap.add_argument("--reports", type=Path, default=Path("reports/screenshots"))
    args = ap.parse_args()
    sb = Sandbox(args.sandbox)
    sb.up(progress=lambda m: print(f"[sandbox] {m}", flush=True))
    sb.activate()
    st = sb.state()
    assert st is not None
    api = api_client(st.kubeconfig)
    try:
        validate_html = run("validate-cluster", {"wait": "0"}, args.reports)
        drill = drills.run_drill("node-lost", sb, api)
        print(f"drill {drill.scenario}: {'; '.join(drill.did)}", flush=True)
        time.sleep(45)  # grace period + toleration on the sandbox's short timings: the eviction lands in the window
        start = (datetime.fromisoformat(drill.started.replace("Z", "+00:00")) - timedelta(seconds=30)).isoformat()
        outage_html = run("outage-analysis", {"start": start, "title": "Node lost (sandbox drill)"}, args.reports)
    finally:
        drills.reset(sb, api)
    args.out.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(Path(validate_html).resolve().as_uri())
        page.screenshot(path=args.out / "validate-cluster-report.png")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(Path(outage_html).resolve().as_uri())
        cells = page.locator(".jp-Cell").filter(has_text="8. Swimlanes")
        lane = page.locator(".jp-Cell").nth(cells.first.evaluate(
            "c => [...document.querySelectorAll('.jp-Cell')].indexOf(c) + 1")).locator("img").first
        lane.scroll_into_view_if_needed()
        lane.screenshot(path=args.out / "outage-analysis-swimlanes.png")
    for p in sorted(args.out.glob("*.png")):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
