"""How a runbook notebook reports what it found.

A notebook calls :func:`finding` (or :func:`findings` for a DataFrame of them)
and :func:`record` for values a scheduled run should keep. Each call displays a
human-readable line *and* attaches machine-readable metadata under the
``opsbook`` key of the display output; the engine (:mod:`opsbook.engine`) reads
that metadata back from the executed notebook to build the run's JSON summary
and exit code. Outside a kernel the same calls print and collect in memory.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from opsbook.display import plain

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
METADATA_KEY = "opsbook"
ROW_COLUMNS = ["time", "source", "object", "what", "detail", "severity", "evidence"]
"""An evidence row (k8s and AWS evidence, detectors, the timeline): one thing that happened and its proof."""


POD_SUFFIX = re.compile(r"-[a-z0-9]{5}$")
"""The random suffix a controller gives its pods: a ReplicaSet's (or Job's, DaemonSet's) pod is ``<owner>-xxxxx``."""


def object_id(kind: str, name: str, namespace: str = "") -> str:
    """The one spelling of an object in findings, evidence rows and timelines.

    ``kind/name`` or ``kind/namespace/name`` with the kind lower-cased, as kubectl accepts it:
    ``node/ip-10-0-1-5.ec2.internal``, ``pod/shop/api-7d9f-x2x1z``, ``deployment/shop/api``, and for AWS and
    metric objects ``instance/i-0abc``, ``asg/nodes-eu-central-1a``, ``metric/CPUCreditBalance/i-0abc``.
    """
    return f"{kind.lower()}/{namespace + '/' if namespace else ''}{name}"

_COLLECTED: list[Finding] = []
_RECORDS: dict[str, Any] = {}


@dataclass(frozen=True)
class Finding:
    """One thing a runbook found.

    Attributes:
        check: stable id of the check, e.g. ``nodes.ready``.
        severity: one of ``info, low, medium, high, critical``.
        message: what is wrong, and what to do, in one or two sentences.
        object: the object concerned (``node/ip-...``, ``i-0abc``), if any.
        group: section it belongs to (``kops``, ``nodes``, ``workloads`` ...).
        evidence: where to look (event, metric, command).
        data: extra machine-readable fields.
    """

    check: str
    severity: str
    message: str
    object: str = ""
    group: str = ""
    evidence: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def _publish(text: str, markdown: str, meta: Mapping[str, Any]) -> None:
    if _in_kernel():
        from IPython.display import display

        display(
            {"text/plain": text, "text/markdown": markdown}, raw=True, metadata={METADATA_KEY: dict(meta)}
        )
    else:
        print(text)




def finding(
    check: str,
    severity: str,
    message: str,
    *,
    object: str = "",
    group: str = "",
    evidence: str = "",
    **data: Any,
) -> Finding:
    """Report one finding (shown in the notebook, read back by the engine)."""
    f = Finding(
        check=check,
        severity=severity,
        message=message,
        object=object,
        group=group,
        evidence=evidence,
        data=_jsonable(data),
    )
    _COLLECTED.append(f)
    obj = f" `{f.object}`" if f.object else ""
    md = f"**{f.severity.upper()}** `{f.check}`{obj}: {html.escape(f.message)}"
    _publish(
        f"[{f.severity.upper()}] {f.check}{' ' + f.object if f.object else ''}: {f.message}",
        md,
        {"finding": asdict(f)},
    )
    return f


class Reported(list[Finding]):
    """The findings a call reported: a plain list to code; shows nothing as a cell's value (already displayed)."""

    def _ipython_display_(self) -> None:
        return None


def findings(items: Iterable[Finding | Mapping[str, Any]], *, quiet: bool = False) -> list[Finding]:
    """Report many findings at once (records or a DataFrame's ``to_dict('records')``).

    With ``quiet=True`` one summary line is displayed instead of one line per finding,
    but every finding is still recorded for the engine.
    """
    out = Reported(
        i if isinstance(i, Finding) else Finding(**{k: v for k, v in i.items() if k in _FIELDS}) for i in items
    )
    if quiet:
        _COLLECTED.extend(out)
        counts = {s: sum(1 for f in out if f.severity == s) for s in SEVERITIES}
        text = "findings: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) if out else "no findings"
        _publish(text, text, {"findings": [asdict(f) for f in out]})
        return out
    for f in out:
        finding(f.check, f.severity, f.message, object=f.object, group=f.group, evidence=f.evidence, **f.data)
    return out


_FIELDS = {"check", "severity", "message", "object", "group", "evidence", "data"}


def record(key: str, value: Any) -> None:
    """Keep a value in the run's JSON summary (e.g. a score, a count)."""
    v = _jsonable(value)
    _RECORDS[key] = v
    _publish(f"{key}: {plain(v)}", _record_markdown(key, v), {"record": {key: v}})


def _record_markdown(key: str, value: Any) -> str:
    """A recorded value as a sentence (scalar, list) or a two-column table (mapping): never a dict dump."""
    if isinstance(value, Mapping) and value:
        rows = "".join(f"| {_cell(k)} | {_cell(plain(v))} |\n" for k, v in value.items())
        return f"**{_cell(key)}**\n\n| field | value |\n|---|---|\n{rows}"
    return f"**{_cell(key)}**: {_cell(plain(value))}"


def _cell(text: Any) -> str:
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def collected() -> tuple[list[Finding], dict[str, Any]]:
    """Findings and records reported in this process (outside a kernel)."""
    return list(_COLLECTED), dict(_RECORDS)


def reset() -> None:
    """Forget what this process collected."""
    _COLLECTED.clear()
    _RECORDS.clear()


def worst(items: Iterable[Finding]) -> str | None:
    """The highest severity among findings, or None."""
    ranks = [SEVERITY_RANK[f.severity] for f in items]
    return SEVERITIES[max(ranks)] if ranks else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
