"""validate-cluster's score plot: evaluations per check group, counted by hand."""

from __future__ import annotations

import pandas as pd

from opsbook.plots.validate import score_by_group, score_table


def test_score_table_counts_pass_info_and_findings_per_group() -> None:
    evals = pd.DataFrame({"group": ["kops", "kops", "nodes", "nodes", "nodes", "workloads"],
                          "severity": ["", "critical", "", "info", "", "low"]})
    t = score_table(evals)
    assert t.to_dict("index") == {
        "kops": {"pass": 1, "info": 0, "finding": 1, "score": 50.0},
        "nodes": {"pass": 2, "info": 1, "finding": 0, "score": 100.0},
        "workloads": {"pass": 0, "info": 0, "finding": 1, "score": 0.0},
    }
    fig = score_by_group(evals, 50.0)
    ax = fig.axes[0]
    assert ax.get_title() == "Score 50.0%: 4 of 6 evaluations without a finding above info"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["pass", "info", "finding"]


def test_empty_validation_draws_an_empty_chart() -> None:
    fig = score_by_group(pd.DataFrame(columns=["group", "severity"]), None)
    assert fig.axes[0].get_title() == "Score n/a: 0 of 0 evaluations without a finding above info"
