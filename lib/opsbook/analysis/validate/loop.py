"""kops' ``--wait``/``--count``/``--interval``: validation repeated until it passes, or counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from opsbook.analysis.validate.catalog import CHECKS
from opsbook.analysis.validate.model import Options, Validation
from opsbook.aws import kops_model
from opsbook.errors import BadInput, OpsbookError
from opsbook.k8s import objects
from opsbook.report import SEVERITIES, SEVERITY_RANK, Finding

log = logging.getLogger("opsbook.analysis.validate")

@dataclass
class ValidationRun:
    """The outcome of :func:`validate_until`.

    Attributes:
        last: the last validation.
        attempts: one row per attempt: ``attempt, at, seconds, passed, score, findings, error``.
        passed: the required consecutive passes were reached.
        reason: why it passed or failed, in one sentence.
        options: the options used.
        count: consecutive passes that were required.
    """

    last: Validation | None
    attempts: pd.DataFrame
    passed: bool
    reason: str
    options: Options
    count: int = 1

    def summary_line(self) -> str:
        """``PASS score 98.7% - ...`` (one line for people and the scheduled report)."""
        s = f"{self.last.score:.1f}%" if self.last else "n/a"
        line = f"{'PASS' if self.passed else 'FAIL'} score {s}: {self.reason}"
        if self.last and self.last.kops_passed != self.passed:
            line += (f" (kops validate cluster: {'PASS' if self.last.kops_passed else 'FAIL'}, "
                     f"{self.last.kops_failures} failure(s))")
        return line

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary for ``opsbook.report.record``."""
        last = self.last
        counts = last.findings["severity"].value_counts().to_dict() if last else {}
        kops = last.kops.as_json() if last else {"failures": [], "nodes": []}
        return {
            "status": "PASS" if self.passed else "FAIL",
            "score": last.score if last else None,
            "line": self.summary_line(),
            "attempts": len(self.attempts),
            # kops validate cluster -o json's shape, so scripts written for kops can read it
            "failures": kops["failures"],
            "nodes": kops["nodes"],
            "kops": {"status": "PASS" if last and last.kops_passed else "FAIL",
                     "failures": len(kops["failures"])},
            "beyond_kops": {
                "findings": int((last.findings["group"] != "kops").sum()) if last else 0,
                "policies": {"max_unready_nodes": self.options.max_unready_nodes,
                             "exclude": list(self.options.exclude), "fail_on": self.options.fail_on},
                "tolerated_nodes": list(last.tolerated) if last else [],
            },
            "kops_failures": last.kops_failures if last else None,
            "findings": {s: int(counts.get(s, 0)) for s in SEVERITIES},
            "excluded": len(last.excluded) if last else 0,
            "degraded_checks": sorted(set(last.notes["check"])) if last else [],
            "api_requests": last.inputs.snapshot.requests if last else None,
        }

    @property
    def nodes(self) -> pd.DataFrame:
        """The last snapshot's nodes (``Snapshot.nodes``; empty if nothing was collected)."""
        return self.last.inputs.snapshot.nodes if self.last else pd.DataFrame(columns=objects.NODE_COLUMNS)

    @property
    def pods(self) -> pd.DataFrame:
        """The last snapshot's pods (``Snapshot.pods``; empty if nothing was collected)."""
        return self.last.inputs.snapshot.pods if self.last else pd.DataFrame(columns=objects.POD_COLUMNS)

    @property
    def targets(self) -> pd.DataFrame:
        """Instance-group targets used by the last validation."""
        return self.last.inputs.targets if self.last else pd.DataFrame(columns=kops_model.TARGET_COLUMNS)

    def not_counted(self) -> pd.DataFrame:
        """What the score leaves out: exclusions (per rule) and degraded checks.

        Returns:
            Columns ``kind`` (``excluded``|``degraded``), ``what`` (rule or check), ``evaluations``,
            ``findings`` (removed by the rule), ``note``.
        """
        cols = ["kind", "what", "evaluations", "findings", "note"]
        if self.last is None:
            return pd.DataFrame(columns=cols)
        ex = self.last.exclusions()
        rows = [{"kind": "excluded", "what": r.rule, "evaluations": int(r.evaluations),
                 "findings": int(r.findings), "note": "removed from the score's numerator and denominator"}
                for r in ex.itertuples(index=False)]
        rows += [{"kind": "degraded", "what": r.check, "evaluations": 0, "findings": 0, "note": r.note}
                 for r in self.last.notes.itertuples(index=False)]
        return pd.DataFrame(rows, columns=cols)

    def findings_table(self) -> pd.DataFrame:
        """The last validation's findings, most severe first."""
        cols = ["severity", "group", "check", "object", "message", "evidence"]
        return self.last.findings[cols] if self.last else pd.DataFrame(columns=cols)


def validate_findings(run: ValidationRun) -> list[Finding]:
    """The last validation's findings as report records (a failed run always has one at ``fail_on`` or above).

    Degraded checks come as ``info`` findings with ``data["degraded"]``.
    """
    out = []
    if run.last is not None:
        for r in run.last.findings.itertuples(index=False):
            out.append(Finding(check=r.check, severity=r.severity, message=r.message, object=r.object,
                               group=r.group, evidence=r.evidence, data={"namespace": r.namespace}))
        for r in run.last.notes.itertuples(index=False):
            out.append(Finding(check=r.check, severity="info", message=f"check degraded: {r.note}",
                               group=CHECKS.get(r.check, ""), data={"degraded": True}))
    if not run.passed and not any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[run.options.fail_on] for f in out):
        sev = "high" if SEVERITY_RANK[run.options.fail_on] <= SEVERITY_RANK["high"] else "critical"
        out.append(Finding(check="validate.result", severity=sev, message=run.reason, group="kops"))
    return out


def validate_until(attempt: Callable[[], Validation], *, wait_s: float = 0, count: int = 1,
                   interval_s: float = 10, options: Options | None = None,
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                   say: Callable[[str], None] | None = None) -> ValidationRun:
    """Validate like ``kops validate cluster --wait --count --interval`` (v1.33.1 ``RunValidateCluster``).

    Without ``wait_s`` one attempt decides (and ``count`` > 1 then fails, as in kops). With
    ``wait_s`` attempts repeat every ``interval_s`` until ``count`` consecutive attempts pass (a
    failure resets the streak). The deadline is only checked before an attempt and only while no
    streak is running: a streak under way when the time is up is finished, as kops does. Any
    opsbook error during an attempt (API server unreachable, AWS unreadable) counts as a failed
    attempt while waiting (kops: "will retry: unexpected error during validation").

    Args:
        attempt: collects and evaluates once (e.g. ``lambda: evaluate(collect(src), opts)``).
        wait_s: keep trying this long (seconds); 0 = one attempt.
        count: consecutive passes required (>= 1).
        interval_s: pause between attempts.
        options: recorded in the result (for ``fail_on``).
        clock: monotonic clock (injectable for tests).
        sleep: sleep function (injectable for tests).
        say: progress callback, one line per attempt.
    """
    if count < 1 or wait_s < 0 or interval_s <= 0:
        raise BadInput("count must be >= 1, wait >= 0 and interval > 0")
    say = say or (lambda m: log.info("%s", m))
    deadline = clock() + wait_s
    rows: list[dict[str, Any]] = []
    last: Validation | None = None
    streak = 0
    while True:
        if wait_s and clock() > deadline and streak == 0:
            reason = (f"wait time ({wait_s:.0f}s) exceeded after {len(rows)} attempt(s): "
                      f"{_fail_reason(last, rows[-1]['error'] if rows else '')}")
            return _run(last, rows, False, reason, options, count)
        t0 = clock()
        error = ""
        try:
            v = attempt()
            last, ok = v, v.passed
        except OpsbookError as e:
            if not wait_s or isinstance(e, BadInput):
                raise
            ok, error = False, str(e)
        streak = streak + 1 if ok else 0
        rows.append({"attempt": len(rows) + 1, "at": datetime.now(UTC), "seconds": round(clock() - t0, 3),
                     "passed": ok, "score": last.score if last and not error else None,
                     "findings": len(last.findings) if last and not error else None, "error": error[:200]})
        say(f"attempt {len(rows)}: {'pass' if ok else 'fail'}"
            f"{f' ({streak}/{count} consecutive)' if ok else ''}{f' - {error[:120]}' if error else ''}")
        if streak >= count:
            reason = (f"passed {streak} consecutive validation(s) in {len(rows)} attempt(s)" if count > 1
                      else f"cluster is valid ({len(rows)} attempt(s))")
            return _run(last, rows, True, reason, options, count)
        if not wait_s:
            if ok:
                reason = (f"passed {streak} consecutive time(s) but not {count}: "
                          "set wait > 0 to keep validating")
            else:
                reason = _fail_reason(last, error)
            return _run(last, rows, False, reason, options, count)
        sleep(interval_s)


def _fail_reason(v: Validation | None, error: str = "") -> str:
    if v is None or error:
        return f"the last attempt failed ({error[:200]})"
    if v.kops_failures:
        kinds = ", ".join(f"{t}/{n}" for t, n in v.kops.keys()[:5])
        more = f" and {v.kops_failures - 5} more" if v.kops_failures > 5 else ""
        checks = sorted(set(v.findings.loc[v.findings["group"] == "kops", "check"]))
        return f"{v.kops_failures} kops validation failure(s): {kinds}{more} ({', '.join(checks)})"
    return f"findings at or above the fail_on severity ({len(v.findings)} findings)"


def _run(last: Validation | None, rows: list[dict[str, Any]], passed: bool, reason: str,
         options: Options | None, count: int) -> ValidationRun:
    return ValidationRun(last=last, attempts=pd.DataFrame(rows), passed=passed, reason=reason,
                         options=options or Options(), count=count)
