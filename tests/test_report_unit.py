"""The HTML report and the notebook displays, without a cluster: what a reader sees, checked in the markup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd

from opsbook.display import frame_html, plain
from opsbook.engine import render, target
from opsbook.engine.run import RunResult
from opsbook.report import Finding, _record_markdown

EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b50\u2b55\ufe0f]")
T0 = datetime(2026, 12, 1, 1, 27, 19, 845123, tzinfo=UTC)
LONG = "Node ip-10-0-1-5 has been NotReady for 6 minutes; its pods were marked for deletion " + "x" * 120 + " end."
API_ERROR = (
    "ApiException: (404)\nReason: Not Found\nHTTP response headers: HTTPHeaderDict({'Audit-Id': 'abc'})\n"
    "HTTP response body: {\"kind\":\"Status\",\"message\":\"namespaces \\\"nope\\\" not found\"}\n"
)


class Tables(HTMLParser):
    """Rows of every <table>, as lists of (tag, text) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self._cell: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._text = tag, ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell:
            self.rows[-1].append((self._cell, self._text.strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell:
            self._text += data


def rows_of(html: str) -> list[list[tuple[str, str]]]:
    p = Tables()
    p.feed(html)
    return p.rows


def test_frame_html_has_no_index_full_text_and_times_to_the_second_utc() -> None:
    df = pd.DataFrame(
        {
            "time": [pd.Timestamp(T0), pd.Timestamp(T0 + timedelta(seconds=61))],
            "message": [LONG, "short"],
            "nodes": [["a", "b"], []],
            "labels": [{"zone": "eu-central-1a"}, {}],
            "took": [pd.Timedelta(seconds=3723), pd.Timedelta(seconds=5)],
        }
    )
    rows = rows_of(frame_html(df))
    assert rows[0] == [("th", "time"), ("th", "message"), ("th", "nodes"), ("th", "labels"), ("th", "took")]
    assert rows[1] == [
        ("td", "2026-12-01 01:27:19 UTC"),
        ("td", LONG),
        ("td", "a, b"),
        ("td", "zone: eu-central-1a"),
        ("td", "1h 02m 03s"),
    ]
    assert rows[2] == [("td", "2026-12-01 01:28:20 UTC"), ("td", "short"), ("td", "none"), ("td", "none"), ("td", "5s")]


def test_a_named_index_becomes_a_column() -> None:
    df = pd.DataFrame({"nodes": [3, 1]}, index=pd.Index(["nodes-a", "master-a"], name="instance_group"))
    rows = rows_of(frame_html(df))
    assert rows == [[("th", "instance_group"), ("th", "nodes")], [("td", "nodes-a"), ("td", "3")],
                    [("td", "master-a"), ("td", "1")]]


def test_a_frame_without_columns_says_so_in_words() -> None:
    assert frame_html(pd.DataFrame()) == "<p><em>(nothing to show: no rows)</em></p>"
    rows = rows_of(frame_html(pd.DataFrame(columns=["workload", "zero_ready_s"])))
    assert rows == [[("th", "workload"), ("th", "zero_ready_s")]]  # no rows, but the header says what is missing


def test_plain_values_read_as_words() -> None:
    assert plain(T0) == "2026-12-01 01:27:19 UTC"
    assert plain(datetime(2026, 12, 1, 3, 0, 0)) == "2026-12-01 03:00:00 UTC"
    assert plain({"status": "PASS", "score": 97.5, "kops": [1, 2]}) == "status: PASS; score: 97.5; kops: 1, 2"
    assert plain([{"check": "node.lost", "time": "2026-12-01T03:11:43.520000+00:00"}]) == (
        "check: node.lost; time: 2026-12-01 03:11:43 UTC")
    assert plain(True) == "yes" and plain(None) == "" and plain(timedelta(minutes=5, seconds=40)) == "5m 40s"


def test_a_recorded_mapping_is_a_table_not_a_dict_dump() -> None:
    md = _record_markdown("validation", {"status": "FAIL", "score": 91.2, "findings": {"high": 2, "low": 0}})
    assert "{" not in md and "'" not in md
    assert "| status | FAIL |" in md and "| score | 91.2 |" in md and "| findings | high: 2; low: 0 |" in md
    assert _record_markdown("nodes", 4) == "**nodes**: 4"


def test_one_paragraph_drops_the_kubernetes_clients_dumps() -> None:
    assert render.one_paragraph(API_ERROR) == "ApiException: (404) Reason: Not Found."
    assert render.one_paragraph("first line\nsecond line\n\nsecond paragraph") == "first line second line."
    assert render.one_paragraph("x" * 2000, limit=100).endswith("…")


def _result(status: str, findings: list[Finding], error: str | None = None, failed: str | None = None) -> RunResult:
    return RunResult(
        runbook="validate-cluster",
        run_id="20261201T012719Z-abc123",
        status=status,
        exit_code={"ok": 0, "findings": 1, "failed": 3}[status],
        started=T0,
        ended=T0 + timedelta(seconds=42.4),
        parameters={"wait": 0},
        findings=findings,
        failed_step=failed,
        error=error,
        target={"cluster": "opsbook.k8s.local", "context": "kwok-i15", "server": "https://127.0.0.1:6443",
                "window": "the cluster as it was at 2026-12-01 01:27:19 UTC"},
    )


def _notebook(with_error: bool) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# Validate cluster\nThe narrative."))
    code = nbformat.v4.new_code_cell("secret_code_here()")
    if with_error:
        code.outputs = [nbformat.v4.new_output(
            "error", ename="ApiException", evalue="(404)",
            traceback=["\x1b[31mTraceback (most recent call last)\x1b[0m", "  File kubernetes/rest.py, line 1",
                       "ApiException: (404)"])]
    else:
        code.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nb.cells.append(code)
    return nb


def test_report_header_then_findings_most_severe_first_with_full_messages() -> None:
    findings = [
        Finding("config.requests", "low", "Container has no requests.", object="pod/default/web"),
        Finding("kops.node.ready", "critical", LONG, object="node/ip-10-0-1-5", evidence="kubectl describe node"),
        Finding("nodes.burstable", "info", "<script>alert(1)</script> is escaped", object="node/x",
                data={"fix": "Switch the instance group to unlimited credits."}),
    ]
    html = render.notebook_html(_notebook(False), _result("findings", findings))
    head, _, rest = html.partition('id="opsbook-findings"')
    assert "validate-cluster" in head and "FINDINGS" in head and "opsbook.k8s.local" in head and "kwok-i15" in head
    assert "2026-12-01 01:27:19 UTC" in head and "42s" in head and "1 critical, 1 low, 1 info" in head
    table = rest.split("</table>")[0]
    rows = rows_of("<table " + table + "</table>")
    assert [r[0][1] for r in rows[1:]] == ["critical", "low", "info"]
    assert rows[0] == [("th", "severity"), ("th", "check"), ("th", "object"), ("th", "message"), ("th", "what to do")]
    assert rows[1] == [("td", "critical"), ("td", "kops.node.ready"), ("td", "node/ip-10-0-1-5"), ("td", LONG),
                       ("td", "kubectl describe node")]
    assert rows[3][4] == ("td", "Switch the instance group to unlimited credits.")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the findings come before the narrative, code is hidden, no external script, no emoji
    assert html.index('id="opsbook-findings"') < html.index("The narrative.")
    assert "secret_code_here" not in html and "<script src=" not in html and not EMOJI.search(html)
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html


def test_failed_report_shows_the_step_and_one_paragraph_and_folds_the_traceback() -> None:
    html = render.notebook_html(_notebook(True), _result("failed", [], error=API_ERROR, failed="Validate"))
    error = html.split('id="opsbook-error">', 1)[1].split("</p>", 1)[0]
    assert "Failed at step “Validate”" in error and "ApiException: (404) Reason: Not Found." in error
    assert "HTTP response headers" not in error and "HTTPHeaderDict" not in error
    details = re.search(r'<details class="opsbook-traceback">(.*?)</details>', html, re.S)
    assert details is not None and "kubernetes/rest.py" in details.group(1)
    assert html.count("kubernetes/rest.py") == 1  # only inside the folded block
    assert not EMOJI.search(html)


def test_no_empty_what_to_do_column() -> None:
    html = render.notebook_html(_notebook(False), _result("findings", [Finding("nodes.burstable", "info", "t2")]))
    assert "<th>what to do</th>" not in html and '<td class="message">t2</td>' in html


def test_target_reads_the_kubeconfig_without_contacting_it(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        "contexts:\n- name: prod\n  context: {cluster: c1, user: u}\n"
        "clusters:\n- name: c1\n  cluster: {server: 'https://api.prod.example:443'}\nusers: []\n"
    )
    assert target.kube_context({"KUBECONFIG": str(kc)}) == ("prod", "https://api.prod.example:443")
    assert target.kube_context({"KUBECONFIG": str(tmp_path / "missing")}) == ("none", "")
    d = target.describe({"cluster": "", "last_hours": 2}, {"KUBECONFIG": str(kc), "KOPS_CLUSTER_NAME": "k.local"}, T0)
    assert d == {"cluster": "k.local", "context": "prod", "server": "https://api.prod.example:443",
                 "window": "2 h before 2026-12-01 01:27:19 UTC"}


def test_install_registers_the_formatter_with_ipython() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from opsbook.display import install

    shell = InteractiveShell.instance()
    try:
        assert install(shell)
        data, _ = shell.display_formatter.format(pd.DataFrame({"check": ["nodes.ready"], "at": [pd.Timestamp(T0)]}))
        assert rows_of(data["text/html"]) == [[("th", "check"), ("th", "at")],
                                              [("td", "nodes.ready"), ("td", "2026-12-01 01:27:19 UTC")]]
    finally:
        InteractiveShell.clear_instance()
