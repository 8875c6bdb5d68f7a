"""Tell someone outside the cluster: alerts on a change of state, and a heartbeat after every run.

Alerts go to webhook URLs given as ``--notify URL`` (repeatable) or in
``$OPSBOOK_NOTIFY`` (space- or comma-separated, so a Kubernetes Secret can hold
them). A URL on ``hooks.slack.com``, or written ``slack+https://...``, gets a
Slack incoming-webhook message (``text`` + ``blocks``; Mattermost and Rocket.Chat
accept the same); any other URL gets a generic JSON document (``text`` plus the
run's fields). A message is sent only when the state changes against the previous
run of the same runbook on the same cluster:

- ok -> failing (exit code != 0), failing -> ok (recovered), or
- still failing, with findings at or above ``--fail-on`` that the previous run did not have.

``--heartbeat URL`` is POSTed after every finished run (a dead-man's switch such
as healthchecks.io: silence means the CronJob or the cluster is dead).

Delivery is retried with exponential backoff; a delivery that still fails is
recorded in the run's JSON (``notifications``) and never fails the run. URLs are
secrets (a Slack webhook URL is a credential): they are never printed, logged or
saved; records name a target only as ``notify[1]``, ``heartbeat``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opsbook.errors import BadInput
from opsbook.report import SEVERITY_RANK

log = logging.getLogger(__name__)

ENV_NOTIFY = "OPSBOOK_NOTIFY"
ENV_HEARTBEAT = "OPSBOOK_HEARTBEAT"
ENV_BACKOFF = "OPSBOOK_NOTIFY_BACKOFF_S"  # first retry delay (then doubled); default 1 s
FAILING_STATUSES = ("findings", "failed", "environment")
TOP_FINDINGS = 5


@dataclass(frozen=True)
class AlertConfig:
    """Where to send alerts and heartbeats, and how hard to try."""

    notify: tuple[str, ...] = ()
    heartbeat: str | None = None
    attempts: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def secrets(self) -> list[str]:
        """Every URL (to be redacted wherever it could appear)."""
        return [u for u in (*self.notify, self.heartbeat) if u]


def alert_config(
    notify: Sequence[str] = (),
    heartbeat: str | None = None,
    env: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> AlertConfig:
    """Build the configuration from CLI values plus ``$OPSBOOK_NOTIFY`` / ``$OPSBOOK_HEARTBEAT``.

    Raises:
        BadInput: a URL is not http(s) (the URL itself is never echoed).
    """
    env = os.environ if env is None else env
    urls = [*notify, *re.split(r"[\s,]+", env.get(ENV_NOTIFY, "").strip())]
    urls = list(dict.fromkeys(u for u in urls if u))
    hb = heartbeat or env.get(ENV_HEARTBEAT) or None
    for i, u in enumerate(urls, 1):
        _check_url(u, f"--notify #{i}")
    if hb:
        _check_url(hb, "--heartbeat")
    if env.get(ENV_BACKOFF) and "backoff_s" not in kwargs:
        kwargs["backoff_s"] = float(env[ENV_BACKOFF])
    return AlertConfig(notify=tuple(urls), heartbeat=hb, **kwargs)


def _check_url(url: str, what: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https", "slack+http", "slack+https") or not urlsplit(url).netloc:
        raise BadInput(f"{what}: not an http(s) URL (the value is not shown; it may be a secret)")


def is_slack(url: str) -> bool:
    """Whether ``url`` wants a Slack incoming-webhook message."""
    parts = urlsplit(url)
    return parts.scheme.startswith("slack+") or parts.hostname == "hooks.slack.com"


def _wire_url(url: str) -> str:
    return url.split("+", 1)[1] if urlsplit(url).scheme.startswith("slack+") else url


@dataclass
class Delivery:
    """What happened to one message (saved in the run's JSON; no URL in it)."""

    target: str
    kind: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


@dataclass
class Change:
    """Why a message is due (or ``None`` from :func:`state_change` when nothing changed)."""

    event: str  # "failing" | "recovered" | "new-findings"
    new_findings: list[dict[str, Any]] = field(default_factory=list)


def finding_key(f: Mapping[str, Any]) -> str:
    """A finding's identity across runs: check and object (messages carry changing numbers)."""
    return f"{f.get('check', '')}|{f.get('object', '')}"


def is_failing(summary: Mapping[str, Any]) -> bool:
    """A run that failed or had findings at/above its --fail-on."""
    return summary.get("status") in FAILING_STATUSES


def state_change(current: Mapping[str, Any], previous: Mapping[str, Any] | None, fail_on: str) -> Change | None:
    """Compare a run summary with the previous run of the same runbook and cluster.

    Args:
        current: this run's summary (``status``, ``findings``).
        previous: the previous run's summary, or ``None`` for the first run (treated as ok).
        fail_on: severity threshold for "new findings".

    Returns:
        The change, or ``None`` when no message is due.
    """
    now_failing = is_failing(current)
    was_failing = previous is not None and is_failing(previous)
    if now_failing and not was_failing:
        return Change("failing", _serious(current, fail_on))
    if was_failing and not now_failing:
        return Change("recovered")
    if now_failing and was_failing and previous is not None:
        before = {finding_key(f) for f in _serious(previous, fail_on)}
        new = [f for f in _serious(current, fail_on) if finding_key(f) not in before]
        if new:
            return Change("new-findings", new)
        if current.get("status") == "failed" and previous.get("status") != "failed":
            return Change("failing")
    return None


def _serious(summary: Mapping[str, Any], fail_on: str) -> list[dict[str, Any]]:
    rank = SEVERITY_RANK[fail_on]
    found = [dict(f) for f in summary.get("findings", []) if SEVERITY_RANK.get(f.get("severity", ""), -1) >= rank]
    return sorted(found, key=lambda f: -SEVERITY_RANK.get(f.get("severity", "info"), 0))


_ICON = {"failing": ":red_circle:", "recovered": ":large_green_circle:", "new-findings": ":large_orange_circle:"}
_HEADLINE = {"failing": "is failing", "recovered": "recovered", "new-findings": "has new findings"}


def message(summary: Mapping[str, Any], change: Change, report: str) -> dict[str, Any]:
    """The generic JSON document for one alert (Slack messages are built from it)."""
    ident = summary.get("cluster") or {}
    cluster = ident.get("cluster_name") or ident.get("context") or "unknown cluster"
    top = (change.new_findings or _serious(summary, "info"))[:TOP_FINDINGS]
    status = str(summary.get("status", ""))
    text = f"opsbook {summary.get('runbook')} on {cluster} {_HEADLINE[change.event]} (status {status})"
    if summary.get("failed_step"):
        text += f": failed at step {summary['failed_step']!r}"
    lines = [f"• [{f.get('severity')}] {f.get('check')}: {f.get('message', '')[:200]}" for f in top]
    return {
        "text": "\n".join([text, *lines, f"report: {report}"]),
        "event": change.event,
        "runbook": summary.get("runbook"),
        "run_id": summary.get("run_id"),
        "cluster": ident,
        "status": status,
        "exit_code": summary.get("exit_code"),
        "failed_step": summary.get("failed_step"),
        "top_findings": [{k: f.get(k, "") for k in ("severity", "check", "object", "message")} for f in top],
        "report": report,
    }


def slack_message(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook payload for a generic message."""
    head, *rest = str(doc["text"]).split("\n")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{_ICON.get(doc['event'], '')} *{head}*"}}
    ]
    if rest:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(rest)[:2900]}})
    return {"text": head, "blocks": blocks}


Poster = Callable[[str, bytes, float], int]


def http_post(url: str, body: bytes, timeout: float) -> int:
    """POST JSON; return the HTTP status (raises on connection errors and 4xx/5xx)."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "opsbook"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status)


def deliver(
    url: str,
    payload: Mapping[str, Any],
    target: str,
    kind: str,
    cfg: AlertConfig,
    post: Poster = http_post,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``payload`` with retries and exponential backoff; never raise."""
    body = json.dumps(payload, default=str).encode()
    error: str | None = None
    status: int | None = None
    for attempt in range(1, cfg.attempts + 1):
        try:
            status = post(_wire_url(url), body, cfg.timeout_s)
            return Delivery(target, kind, True, attempt, status)
        except urllib.error.HTTPError as e:
            status, error = e.code, f"HTTP {e.code} {e.reason}"
            if 400 <= e.code < 500 and e.code not in (408, 429):
                break  # a wrong URL or payload does not get better by retrying
        except Exception as e:  # any transport failure is recorded, never raised
            status, error = None, f"{e.__class__.__name__}: {getattr(e, 'reason', e)}"
        error = _scrub(error or "", url)
        log.warning("%s delivery attempt %d/%d failed: %s", target, attempt, cfg.attempts, error)
        if attempt < cfg.attempts:
            sleep(cfg.backoff_s * 2 ** (attempt - 1))
    return Delivery(target, kind, False, attempt, status, _scrub(error or "", url))


def _scrub(text: str, url: str) -> str:
    for u in (url, _wire_url(url), urlsplit(_wire_url(url)).path):
        if u and len(u) > 1:
            text = text.replace(u, "<url>")
    return text


def send_all(
    summary: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    fail_on: str,
    report: str,
    cfg: AlertConfig,
    post: Poster = http_post,
    redact: Callable[[str], str] = lambda s: s,
) -> list[Delivery]:
    """Send the alert (if the state changed) to every notify URL, then ping the heartbeat.

    Args:
        summary: this run's summary, with ``cluster``.
        previous: the previous run of the same runbook and cluster, or ``None``.
        fail_on: threshold for "new findings".
        report: where the report is (path or URL), put in the message.
        cfg: targets and retry policy.
        post: the HTTP client (tests pass the real one; kept as a seam for other transports).
        redact: applied to every message text before it is sent.

    Returns:
        One :class:`Delivery` per message attempted.
    """
    out: list[Delivery] = []
    change = state_change(summary, previous, fail_on) if cfg.notify else None
    if change is not None:
        doc = _redacted(message(summary, change, report), redact)
        for i, url in enumerate(cfg.notify, 1):
            kind = "slack" if is_slack(url) else "json"
            payload = slack_message(doc) if kind == "slack" else doc
            out.append(deliver(url, payload, f"notify[{i}]", kind, cfg, post))
    if cfg.heartbeat:
        ping = {
            "runbook": summary.get("runbook"),
            "run_id": summary.get("run_id"),
            "status": summary.get("status"),
            "exit_code": summary.get("exit_code"),
            "cluster": (summary.get("cluster") or {}).get("cluster_name", ""),
        }
        out.append(deliver(cfg.heartbeat, ping, "heartbeat", "heartbeat", cfg, post))
    return out


def _redacted(doc: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    def fix(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v)
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v

    return dict(fix(doc))


def summaries_before(
    entries: Iterable[Mapping[str, Any]], runbook: str, cluster_key: str, started: str
) -> Mapping[str, Any] | None:
    """The newest complete run of ``runbook`` on ``cluster_key`` that started before ``started``."""
    best: Mapping[str, Any] | None = None
    for e in entries:
        if e.get("runbook") != runbook or e.get("cluster_key", "") != cluster_key:
            continue
        if e.get("status") not in ("ok", *FAILING_STATUSES) or str(e.get("started", "")) >= started:
            continue
        if best is None or str(e.get("started", "")) > str(best.get("started", "")):
            best = e
    return best
