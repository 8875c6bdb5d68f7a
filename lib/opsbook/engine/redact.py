"""Keep secrets out of saved reports.

papermill writes parameters verbatim into the notebook, and a careless cell can
print an environment variable or a certificate. Before anything is saved, every
text field of the executed notebook is scrubbed of: the values of secret-looking
environment variables (names with SECRET, TOKEN, PASSWORD, KEY, CREDENTIAL ...),
PEM blocks (private keys *and* certificate bodies), AWS access key ids, JWTs and
bearer tokens, and kubeconfig credential fields.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***REDACTED***"
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|_KEY\b|_KEY_|APIKEY|AUTH)", re.I)
MIN_SECRET_LEN = 8
PATTERNS = [
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----"),
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----[A-Za-z0-9+/=\s\\n]{16,}"),  # truncated PEM bodies
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(
        r"(?i)((?:client-key-data|client-certificate-data|certificate-authority-data|token|password)"
        r"\"?\s*[:=]\s*\"?)([A-Za-z0-9._~+/=-]{12,})"
    ),
]


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables, longest first."""
    env = os.environ if env is None else env
    vals = {v for k, v in env.items() if SECRET_ENV.search(k) and v and len(v) >= MIN_SECRET_LEN}
    return sorted(vals, key=len, reverse=True)


def looks_secret(value: str) -> bool:
    """Whether a string matches a secret pattern (key, token, PEM block)."""
    return any(p.search(value) for p in PATTERNS)


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """Replace secret values and patterns in ``text``."""
    for v in values:
        if v in text:
            text = text.replace(v, REDACTED)
    *whole, keyed = PATTERNS
    for p in whole:
        text = p.sub(REDACTED, text)
    # the last pattern keeps its "key:" prefix and replaces only the value
    return keyed.sub(lambda m: m.group(1) + REDACTED, text)


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
