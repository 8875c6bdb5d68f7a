"""A post-mortem draft in Markdown (Google SRE / PagerDuty shape) and the incident's response times.

Sections: summary, impact, trigger and likely causes, detection, resolution,
timeline (UTC, each row linked to its evidence), what went well / badly /
where we got lucky, action items with owners. Facts the evidence gives are
filled in; judgement is left as ``TODO`` for the people who were there.

Response times (when the alert times are given): time to detect = first alert −
start of impact (the earliest likely cause), to acknowledge = acknowledged −
first alert, to mitigate = mitigated − start, to resolve = resolved − start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from opsbook.analysis.timeline import Incident
from opsbook.report import SEVERITY_RANK


def impact_start(findings: pd.DataFrame, timeline: pd.DataFrame, incident: Incident) -> pd.Timestamp:
    """When the contributing factor began.

    The earliest time of the top causes (score ≥ half the best), else the first high-severity row,
    else the window's start.
    """
    if len(findings) and "kind" in findings:
        findings = findings[findings["kind"] == "cause"]
    if len(findings):
        top = findings[findings["score"] >= findings["score"].max() * 0.5]
        t = top["time"].dropna().min()
        if not pd.isna(t):
            return max(pd.Timestamp(t), incident.start)
    if len(timeline):
        high = timeline[timeline["severity"].isin(["high", "critical"]) & (timeline["source"] != "alert")]
        if len(high):
            return pd.Timestamp(high["time"].min())
    return incident.start


def response_times(incident: Incident, began: pd.Timestamp) -> pd.DataFrame:
    """Time to detect / acknowledge / mitigate / resolve, for the alert times that are known.

    Returns:
        DataFrame with columns ``measure`` (TTD, TTA, TTM, TTR), ``from``, ``to``, ``minutes``.
    """
    a = incident.alerts
    spans = [
        ("TTD (time to detect)", "impact began", began, "first_alert"),
        ("TTA (time to acknowledge)", "first alert", a.get("first_alert"), "acknowledged"),
        ("TTM (time to mitigate)", "impact began", began, "mitigated"),
        ("TTR (time to resolve)", "impact began", began, "resolved"),
    ]
    recs = []
    for name, from_label, t0, key in spans:
        t1 = a.get(key)
        if t0 is None or t1 is None:
            continue
        recs.append(
            (
                name,
                f"{from_label} {t0:%H:%M:%S}Z",
                f"{key.replace('_', ' ')} {t1:%H:%M:%S}Z",
                round((t1 - t0).total_seconds() / 60, 1),
            )
        )
    return pd.DataFrame(recs, columns=["measure", "from", "to", "minutes"])


def times(incident: Incident, findings: pd.DataFrame, timeline: pd.DataFrame) -> pd.DataFrame:
    """:func:`response_times` from the start of impact given by :func:`impact_start`."""
    return response_times(incident, impact_start(findings, timeline, incident))


def _md_escape(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def impact_facts(causes: pd.DataFrame) -> list[str]:
    """Markdown lines with what the causes measured: pods evicted, workloads that lost capacity, zones."""
    out: list[str] = []
    for r in causes.head(3).itertuples():
        data = r.data if isinstance(r.data, dict) else {}
        facts = []
        if data.get("zone"):
            facts.append(f"availability zone `{data['zone']}` lost ({', '.join(data.get('nodes', []))})")
        if data.get("evicted_pods"):
            pods = data["evicted_pods"]
            facts.append(
                f"{len(pods)} pod(s) evicted: " + ", ".join(f"`{p}`" for p in pods[:10])
                + (" …" if len(pods) > 10 else "")
            )
        if data.get("workloads"):
            facts.append(
                "workloads that lost capacity: "
                + ", ".join(f"`{w}` ({k})" for w, k in sorted(data["workloads"].items()))
            )
        if data.get("instance_id"):
            facts.append(f"instance `{data['instance_id']}` terminated")
        if data.get("queue"):
            owner = f", consumer `{data['owner']}`" if data.get("owner") else ""
            facts.append(f"queue `{data['queue']}` backed up{owner}")
        if facts:
            out.append(f"- From `{_md_escape(r.object)}` ({r.check}): " + "; ".join(facts) + ".")
    return [*out, ""] if out else []


def draft(
    incident: Incident,
    timeline: pd.DataFrame,
    findings: pd.DataFrame,
    notes: list[str] | None = None,
    max_rows: int = 60,
) -> str:
    """The post-mortem draft as Markdown.

    Args:
        incident: the validated window, title and alert times.
        timeline: the collapsed timeline (:func:`opsbook.analysis.timeline.build_timeline`).
        findings: ranked likely causes (:func:`opsbook.analysis.detectors.run_detectors`).
        notes: evidence sources that were unavailable (said in the draft, so nobody over-trusts it).
        max_rows: timeline rows to include (the most severe first, then in time order).

    Returns:
        Markdown text.
    """
    began = impact_start(findings, timeline, incident)
    times = response_times(incident, began)
    causes = findings[findings["kind"] == "cause"] if "kind" in findings else findings
    standing = findings[findings["kind"] == "standing"] if "kind" in findings else findings.iloc[:0]
    top = causes.iloc[0] if len(causes) else None
    lines = [
        f"# Post-mortem: {incident.title}",
        "",
        f"*Draft generated by opsbook from cluster and AWS evidence, "
        f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M}Z. Window {incident.start:%Y-%m-%d %H:%M:%S}Z – "
        f"{incident.end:%Y-%m-%d %H:%M:%S}Z. Edit every TODO.*",
        "",
        "## Summary",
        "",
        (
            f"Impact began around **{began:%Y-%m-%d %H:%M:%S}Z**. Most likely cause: {top['message']}"
            if top is not None
            else "No likely cause in the window: the cause is not in the collected evidence. TODO"
        ),
        "",
        "## Impact",
        "",
        "TODO: who and what was affected (users, requests, queues), for how long, revenue/SLO budget.",
        "",
    ]
    lines += impact_facts(causes)
    if len(timeline):
        affected = timeline[timeline["severity"].isin(["high", "critical"])]["object"].head(10)
        if len(affected):
            lines += [
                "Objects with high-severity evidence: " + ", ".join(f"`{o}`" for o in affected.unique()),
                "",
            ]
    lines += ["## Trigger and likely causes", ""]
    if len(causes):
        for r in causes.head(6).itertuples():
            lines.append(
                f"{r.rank}. **{r.check}** ({r.severity}, `{r.object}`): {r.message} *Evidence:* {r.evidence}"
            )
        lines += [
            "",
            "TODO: confirm the root cause and the trigger; causes above are ranked by the detectors, "
            "not proven.",
            "",
        ]
    else:
        lines += ["TODO: no detector found a cause that began in the window.", ""]
    if len(standing):
        lines += ["Standing problems (began before the window; not causes of this incident, fix them anyway):", ""]
        lines += [f"- **{r.check}** `{_md_escape(r.object)}`: {r.message}" for r in standing.itertuples()]
        lines.append("")
    lines += ["## Detection", ""]
    if len(times):
        lines += ["| measure | from | to | minutes |", "|---|---|---|---|"]
        lines += [f"| {r.measure} | {r._2} | {r.to} | {r.minutes:g} |" for r in times.itertuples()]
        lines.append("")
    else:
        lines += [
            "Alert times not given: TODO add first page / acknowledged / mitigated / resolved to compute "
            "time to detect, mitigate and resolve.",
            "",
        ]
    lines += [
        "TODO: which alert fired first, and which alert should have fired earlier.",
        "",
        "## Resolution",
        "",
        "TODO: what was done to mitigate and resolve (commands, rollbacks, plan changes).",
        "",
    ]
    if "mitigated" in incident.alerts or "resolved" in incident.alerts:
        for k in ("mitigated", "resolved"):
            if k in incident.alerts:
                lines.append(f"- {k}: {incident.alerts[k]:%Y-%m-%d %H:%M:%S}Z")
        lines.append("")
    lines += [
        "## Timeline (UTC)",
        "",
        "| time | source | object | what | detail | × | evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    if len(timeline):
        sev_rank = timeline["severity"].map(SEVERITY_RANK)
        keep = (
            timeline.assign(_s=sev_rank).sort_values(["_s", "time"], ascending=[False, True]).head(max_rows)
        )
        for r in keep.sort_values("time").itertuples():
            lines.append(
                f"| {r.time:%H:%M:%S} | {r.source} | `{_md_escape(r.object)}` | {_md_escape(r.what)} | "
                f"{_md_escape(str(r.detail)[:120])} | {r.count} | `{_md_escape(r.evidence)}` |"
            )
        if len(timeline) > max_rows:
            lines.append(f"\n*{len(timeline) - max_rows} lower-severity rows omitted; see the report.*")
    lines += [
        "",
        "## What went well",
        "",
        "- TODO",
        "",
        "## What went badly",
        "",
        "- TODO",
        "",
        "## Where we got lucky",
        "",
        "- TODO",
        "",
        "## Action items",
        "",
        "| action | type (prevent/detect/mitigate) | owner | ticket |",
        "|---|---|---|---|",
    ]
    for r in causes.head(3).itertuples() if len(causes) else []:
        lines.append(f"| TODO: address `{r.check}` on `{_md_escape(r.object)}` | prevent | TODO | TODO |")
    lines.append("| TODO: alert earlier on the first symptom | detect | TODO | TODO |")
    if notes:
        lines += ["", "## Evidence not available", ""] + [f"- {_md_escape(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def save(markdown: str, path: str = "", incident: Incident | None = None) -> Path:
    """Write the draft beside the report: ``path``, else ``$OPSBOOK_OUTPUT_DIR``, else the working directory.

    Returns:
        The file written (``postmortem-<start>.md`` when ``path`` is a directory or empty).
    """
    target = Path(path) if path else Path(os.environ.get("OPSBOOK_OUTPUT_DIR", "."))
    if target.suffix != ".md":
        stamp = f"{incident.start:%Y%m%dT%H%M}" if incident else f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M}"
        target = target / f"postmortem-{stamp}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(markdown, encoding="utf-8")
    return target
