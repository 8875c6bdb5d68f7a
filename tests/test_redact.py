"""Redaction of the common secret shapes (values not in the environment) and of nothing else."""

from __future__ import annotations

import html
import json

import pytest

from opsbook.redact import REDACTED, plugin_patterns, redact_text
from secret_corpus import corpus


@pytest.mark.parametrize(("shape", "text", "secret"), corpus(), ids=[c[0] for c in corpus()])
def test_each_shape_is_redacted(shape: str, text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out, shape
    assert REDACTED in out


@pytest.mark.parametrize(("shape", "text", "secret"), corpus(), ids=[c[0] for c in corpus()])
def test_each_shape_is_redacted_inside_json_escaped_text(shape: str, text: str, secret: str) -> None:
    escaped = json.dumps({"outputs": [{"text": text}]})  # how an .ipynb stores it
    assert secret not in redact_text(escaped), shape


def test_context_around_a_secret_survives() -> None:
    out = redact_text("mongodb://app:s3cr3t-Pa55word@mongo-0:27017/orders")
    assert out == f"mongodb://app:{REDACTED}@mongo-0:27017/orders"  # user and host stay: they help debugging
    ini = redact_text("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = eu-central-1")
    assert ini == f"aws_secret_access_key = {REDACTED}\nregion = eu-central-1"


def test_ordinary_report_text_is_left_alone() -> None:
    text = (
        "Node ip-172-20-1-10.eu-central-1.compute.internal is NotReady since 2026-12-01T02:00:00Z; "
        "pod orders-7d9f8b6c4-x2x9z on 10.0.3.4 was evicted (TaintManagerEviction). "
        "Basic checks passed. secretName: api-tls volume mounted; see https://kops.sigs.k8s.io/operations/. "
        "automountServiceAccountToken: false; image registry.k8s.io/kube-apiserver:v1.31.4"
    )
    assert redact_text(text) == text


def test_detect_secrets_plugins_are_in_use() -> None:
    sources = {p.pattern for p in plugin_patterns()}
    assert any("hooks\\.slack\\.com" in s for s in sources)
    assert any(s.startswith("(ghp|gho") for s in sources)
    assert not any("Negative lookbehind" in s for s in sources)  # public IPs are not secrets


@pytest.mark.parametrize(("shape", "text", "secret"), corpus(), ids=[c[0] for c in corpus()])
def test_each_shape_is_redacted_inside_html_escaped_text(shape: str, text: str, secret: str) -> None:
    escaped = html.escape(text)  # how a finding's markdown/HTML output holds it
    out = redact_text(escaped)
    assert secret not in out and html.escape(secret) not in out, shape
