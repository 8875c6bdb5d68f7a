"""Reading certificates: in Secrets, in ConfigMaps, and the API server's own (metadata only).

The team once lost push notifications to an expired certificate, so every PEM
certificate the cluster stores is checked, not only ``kubernetes.io/tls``
Secrets: any Secret or ConfigMap value containing ``-----BEGIN CERTIFICATE-----``.
Only certificate *metadata* leaves this module (subject, issuer, expiry,
fingerprint); the values themselves, and any private keys beside them, are
dropped as soon as the page they came in is parsed.

Reading Secrets needs ``list secrets``, which in RBAC means reading every
secret's value: ``deploy/rbac-readonly.yaml`` keeps that grant in a separate,
optional ClusterRole. Without it the secret part of the check is skipped with a
note, and ConfigMaps and the API server certificate are still checked.

The API server's serving certificate is fetched with a TLS handshake (no
verification: this reads the certificate, it does not trust it).
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import ssl
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning

log = logging.getLogger(__name__)

PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


def pem_certificates(blob: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (empty if there is none or it does not parse)."""
    if PEM_MARKER not in blob:
        return []
    try:
        with warnings.catch_warnings():
            # e.g. kwok's CA has a non-positive serial: still worth checking its expiry
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return list(x509.load_pem_x509_certificates(blob))
    except ValueError:
        log.debug("unparseable PEM bundle (%d bytes)", len(blob))
        return []


def cert_row(namespace: str, obj: str, key: str, cert: x509.Certificate) -> dict[str, Any]:
    """The metadata of one certificate as kept in ``Snapshot.certs``."""
    return {
        "namespace": namespace, "object": obj, "key": key,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "fingerprint": cert.fingerprint(hashes.SHA256()).hex()[:16],
    }


def certificates_in(namespace: str, obj: str, data: Mapping[str, str], *,
                    base64_values: bool) -> list[dict[str, Any]]:
    """Certificate rows for every PEM certificate in a Secret's or ConfigMap's ``data``.

    Args:
        namespace: the object's namespace.
        obj: the object id, e.g. ``secret/ns/name``.
        data: the object's ``data`` map.
        base64_values: True for Secrets (values are base64), False for ConfigMaps.
    """
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        if not value:
            continue
        if base64_values:
            try:
                blob = base64.b64decode(value, validate=False)
            except (binascii.Error, ValueError):
                continue
        else:
            blob = value.encode()
        rows.extend(cert_row(namespace, obj, key, c) for c in pem_certificates(blob))
    return rows


def apiserver_certificate(server: str, timeout: float = 5.0) -> pd.DataFrame:
    """The API server's serving certificate, read by a TLS handshake (no trust decision made).

    Args:
        server: the API server URL, e.g. ``https://127.0.0.1:6443``.
        timeout: connect timeout in seconds.

    Returns:
        One row with the ``Snapshot.certs`` columns (object ``apiserver/<host:port>``), or no row
        for a plain-HTTP server.

    Raises:
        OSError: the server cannot be reached or does not speak TLS.
    """
    url = urlparse(server)
    if url.scheme != "https" or not url.hostname:
        return pd.DataFrame(columns=["namespace", "object", "key", "subject", "issuer", "not_after",
                                     "fingerprint"])
    port = url.port or 443
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((url.hostname, port), timeout=timeout) as sock, \
            ctx.wrap_socket(sock, server_hostname=url.hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise OSError(f"{server} presented no certificate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        cert = x509.load_der_x509_certificate(der)
    df = pd.DataFrame([cert_row("", f"apiserver/{url.hostname}:{port}", "serving", cert)])
    df["not_after"] = pd.to_datetime(df["not_after"], utc=True)
    return df
