"""Each runbook's HTML report from a real sandbox run, read in Debian's chromium: findings first, plots drawn,
a failed run's error in one paragraph with the traceback folded away."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from browser import artifact, chromium
from opsbook.engine.catalog import find_runbook, load_runbook
from opsbook.engine.params import parse_parameters
from opsbook.engine.run import RunResult, run_runbook
from opsbook.report import SEVERITY_RANK
from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen: "above the fold" means within this height
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b50\u2b55\ufe0f]")
# onboarding is left out: its game day breaks the shared sandbox on purpose and runs two of these runbooks itself
PLOTS = {"validate-cluster": 3, "cluster-inventory": 1, "outage-analysis": 1, "cost-credit-review": 1,
         "create-cluster": 0, "upgrade-cluster": 1}
RUNBOOKS: dict[str, dict[str, Any]] = {
    "validate-cluster": {"wait": "0"},
    "cluster-inventory": {},
    "outage-analysis": {"last_hours": "1"},
    "cost-credit-review": {"window_days": "1"},
    "create-cluster": {},
    "upgrade-cluster": {"provider": "sandbox"},  # a dry run: preflight and plan, no node touched
}


@pytest.fixture(scope="module")
def reports(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    out = tmp_path_factory.mktemp("reports")
    results = {}
    for name, raw in RUNBOOKS.items():
        rb = find_runbook(name)
        results[name] = run_runbook(rb, parse_parameters(rb.parameters, raw, rb.name), output=out, timeout=600)
    failing = load_runbook(ROOT / "tests" / "notebooks" / "api_failure.ipynb")
    results["api_failure"] = run_runbook(failing, {}, output=out, timeout=300)
    return results


def page_facts(browser: Any, html: str, shot: str) -> dict[str, Any]:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(Path(html).as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=artifact(shot))
    facts = page.evaluate(
        """() => {
            const box = e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, r.width, r.height]; };
            const findings = document.getElementById('opsbook-findings');
            const firstRow = document.querySelector('#opsbook-findings tbody tr');
            const tables = [...document.querySelectorAll('.jp-OutputArea-output table')];
            return {
              findings: findings ? box(findings) : null,
              firstRow: firstRow ? box(firstRow) : null,
              findingsHeader: [...document.querySelectorAll('#opsbook-findings thead th')].map(t => t.textContent),
              images: [...document.querySelectorAll('img')]
                .map(i => [i.naturalWidth, i.naturalHeight, ...box(i).slice(2)]),
              firstHeaderCells: tables.map(t => (t.querySelector('thead th') || {}).textContent || ''),
              cutCells: [...document.querySelectorAll('table td')].map(td => td.textContent.trim())
                .filter(t => t.endsWith('...')),
              text: document.body.innerText,
            };
        }"""
    )
    error = page.locator("#opsbook-error")
    facts["error_visible"] = error.count() == 1 and error.is_visible()
    folded = page.locator("details.opsbook-traceback").all()
    facts["traceback_visible"] = [d.locator("pre").first.is_visible() for d in folded]
    page.close()
    return facts


@pytest.mark.parametrize("name", list(RUNBOOKS))
def test_report_answers_first_and_draws_its_plots(reports: dict[str, RunResult], name: str) -> None:
    result = reports[name]
    assert result.status in ("ok", "findings"), (result.failed_step, result.error)
    with chromium() as browser:
        f = page_facts(browser, result.locations["html"], f"report-{name}.png")
    top, bottom, width, _ = f["findings"]
    assert 0 < top < VIEWPORT["height"] / 2 and width > 600, f["findings"]  # starts in the top half of the screen
    assert f["text"].startswith(result.runbook)
    if result.findings:
        assert f["findingsHeader"][:4] == ["severity", "check", "object", "message"]
        assert f["findingsHeader"][4:] in ([], ["what to do"])
        assert f["firstRow"][1] <= VIEWPORT["height"], f["firstRow"]  # the worst finding shows without scrolling
        worst = max(result.findings, key=lambda x: SEVERITY_RANK[x.severity])
        assert worst.message in f["text"]  # in full, not cut
    else:
        assert bottom <= VIEWPORT["height"] and "No findings." in f["text"]
    assert len(f["images"]) >= PLOTS[name], f["images"]
    assert all(w > 0 and h > 0 and bw > 0 and bh > 0 for w, h, bw, bh in f["images"]), f["images"]
    assert all(cell.strip() for cell in f["firstHeaderCells"]), "a table starts with an index column"
    text = f["text"]
    assert not EMOJI.search(text) and "Finding(" not in text and "{'" not in text and '{"' not in text
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{3,}", text), "a time shown below the second"
    assert f["cutCells"] == []  # no table cell cut off with "..."


def test_failed_run_report_shows_one_paragraph_and_folds_the_traceback(reports: dict[str, RunResult]) -> None:
    result = reports["api_failure"]
    assert result.status == "failed" and result.exit_code == 3 and result.failed_step == "Read the namespace"
    with chromium() as browser:
        f = page_facts(browser, result.locations["html"], "report-failed-run.png")
    assert f["error_visible"]
    error_line = next(ln for ln in f["text"].splitlines() if ln.startswith("Failed at step"))
    assert re.match(r"Failed at step “Read the namespace”\. \w*Exception: \(404\) Reason: Not Found\. ", error_line)
    assert f["traceback_visible"] == [False]  # folded, not deleted
    assert "HTTP response headers" not in f["text"] and "Traceback (most recent call last)" not in f["text"]
    html = Path(result.locations["html"]).read_text()
    assert "HTTP response headers" in html  # the whole traceback is still in the file, under <details>
    assert f["findings"][1] <= VIEWPORT["height"]
