"""Keep secrets out of saved reports and sent messages.

papermill writes parameters verbatim into the notebook, and a careless cell can
print an environment variable, a ConfigMap or an event that quotes a connection
string. Before anything is saved or sent, every text field is scrubbed of:

- the values of secret-looking environment variables (names with SECRET, TOKEN,
  PASSWORD, KEY, CREDENTIAL ...) and of any other value the caller names (webhook URLs);
- opsbook's own shapes: PEM blocks (private keys *and* certificate bodies), JWTs,
  bearer and ``Basic`` credentials, the password in any URI's userinfo
  (``mongodb://``, ``mongodb+srv://``, ``postgresql://``, ``amqps://`` ...), and
  keyed values (``aws_secret_access_key = ...``, ``"SecretAccessKey": "..."``,
  ``password:``, kubeconfig credential fields);
- every pattern of detect-secrets' maintained regex plugins (AWS keys, GitHub,
  GitLab, Slack tokens and webhook URLs, Stripe, SendGrid, npm, PyPI, ...), except
  the noisy ones listed in ``SKIPPED_PLUGINS``. The plugins supply the patterns;
  the replace loop is opsbook's: a pattern with a capture group of 8+ characters
  has only that group replaced, otherwise the whole match.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

REDACTED = "***REDACTED***"
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|_KEY\b|_KEY_|APIKEY|AUTH)", re.I)
MIN_SECRET_LEN = 8
# public IPs are not secrets; the Artifactory "AP..." shape matches ordinary words in reports
SKIPPED_PLUGINS = {"IPPublicDetector", "ArtifactoryDetector", "KeywordDetector"}
PATTERNS = [
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----"),
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----[A-Za-z0-9+/=\s\\n]{16,}"),  # truncated PEM bodies
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"\bBasic\s+(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"),
]
# a quote as it appears in text, JSON-escaped text or HTML (report markdown escapes quotes)
_HTML_QUOTE = r"&quot;|&#x27;|&#39;|&#34;"
_QUOTE = rf"(?:\\?[\"']|{_HTML_QUOTE})"
# keep the prefix (group 1) and the closing part (group 3), replace the value (group 2)
KEYED = [
    # the password in a URI's userinfo: scheme://user:PASSWORD@host
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]{1,30}://[^\s:/?#@\"'<>\\]+:)([^\s@/\"'<>\\]+)(@)"),
    re.compile(
        r"(?i)((?:client-key-data|client-certificate-data|certificate-authority-data|"
        r"aws_secret_access_key|secret_?access_?key|aws_session_token|session_?token|client_?secret|"
        r"api_?key|access_?token|auth_?token|token|password|passwd|pwd|secret)"
        rf"{_QUOTE}?[ \t]*[:=][ \t]*{_QUOTE}?)((?:(?!{_HTML_QUOTE})[^\s\"'`,;<>{{}}\\]){{6,}})()"
    ),
]


@cache
def plugin_patterns() -> tuple[re.Pattern[str], ...]:
    """The regexes of detect-secrets' regex plugins (empty if detect-secrets is not installed)."""
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    except ImportError:  # pragma: no cover - a dependency; opsbook's own patterns still apply
        return ()
    out: list[re.Pattern[str]] = []
    plugins: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    for cls in plugins:
        if cls.__name__ in SKIPPED_PLUGINS:
            continue
        out.extend(p for p in getattr(cls(), "denylist", ()) if isinstance(p, re.Pattern))
    return tuple(out)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables, longest first."""
    env = os.environ if env is None else env
    vals = {v for k, v in env.items() if SECRET_ENV.search(k) and v and len(v) >= MIN_SECRET_LEN}
    return sorted(vals, key=len, reverse=True)


def looks_secret(value: str) -> bool:
    """Whether a string matches a secret pattern (key, token, PEM block, URI password ...)."""
    return redact_text(value) != value


def _replace_secret(m: re.Match[str]) -> str:
    groups = [i for i in range(1, (m.re.groups or 0) + 1) if m.group(i) and len(m.group(i)) >= MIN_SECRET_LEN]
    if not groups:
        return REDACTED
    i = max(groups, key=lambda g: len(m.group(g)))
    start, end = m.start(i) - m.start(), m.end(i) - m.start()
    return m.group(0)[:start] + REDACTED + m.group(0)[end:]


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """Replace secret values and patterns in ``text``."""
    for v in sorted(values, key=len, reverse=True):
        if v and v in text:
            text = text.replace(v, REDACTED)
    for p in PATTERNS:
        text = p.sub(REDACTED, text)
    for p in KEYED:
        text = p.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) == REDACTED else REDACTED) + m.group(3), text)
    for p in plugin_patterns():
        text = p.sub(_replace_secret, text)
    return text


_TEXT_MIMES = (
    "text/plain",
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
    "application/javascript",
    "text/csv",
)


def redact_notebook(nb: Any, values: Iterable[str] = ()) -> int:
    """Scrub every text field of an nbformat notebook in place; return how many fields changed."""
    vals = list(values)
    changed = 0

    def fix(s: Any) -> Any:
        nonlocal changed
        if isinstance(s, list):
            return [fix(x) for x in s]
        if isinstance(s, dict):
            return {k: fix(v) for k, v in s.items()}
        if not isinstance(s, str):
            return s
        r = redact_text(s, vals)
        if r != s:
            changed += 1
        return r

    nb.metadata = fix(dict(nb.metadata))
    for cell in nb.cells:
        cell.source = fix(cell.source)
        if "metadata" in cell:
            cell.metadata = fix(dict(cell.metadata))
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = fix(out["text"])
            if "traceback" in out:
                out["traceback"] = fix(out["traceback"])
            if "evalue" in out:
                out["evalue"] = fix(out["evalue"])
            data = out.get("data", {})
            for mime in list(data):
                if mime in _TEXT_MIMES or mime.startswith("text/"):
                    data[mime] = fix(data[mime])
            if "metadata" in out:
                out["metadata"] = fix(dict(out["metadata"]))
    return changed
