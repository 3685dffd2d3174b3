"""AWS Signature Version 4 for JSON requests: pure functions from a request to its headers.

Written here rather than calling botocore's signer on the hot path because botocore builds
several objects per call and derives the signing key every time; we cache the key per
(secret, day, region, service). Tests check every signature against botocore's.

The canonical request and the string to sign are shared with the X.509 variant that IAM Roles
Anywhere uses (``sigv4_x509``), which signs the same string with a private key instead of HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from bedrock_gw.aws.credentials import AwsCredentials

__all__ = ["CanonicalRequest", "canonical_request", "encode_path_segment", "sign_headers"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNRESERVED = "-_.~"


def encode_path_segment(value: str) -> str:
    """Percent-encode one path label (a model id, an ARN) the way botocore does."""
    return quote(value, safe=_UNRESERVED)


@dataclass(frozen=True, slots=True)
class CanonicalRequest:
    """The parts of a request that a SigV4 signature covers, ready to be signed."""

    amz_date: str
    scope: str
    signed_names: str
    text: str
    """The canonical request itself (method, URI, query, headers, names, payload hash)."""

    def string_to_sign(self, algorithm: str) -> str:
        digest = hashlib.sha256(self.text.encode()).hexdigest()
        return f"{algorithm}\n{self.amz_date}\n{self.scope}\n{digest}"


def canonical_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    region: str,
    service: str,
    now: datetime,
) -> CanonicalRequest:
    """Canonicalise a request whose ``headers`` already hold every header to be signed.

    ``Host`` and ``X-Amz-Date`` are added here; ``url`` must carry its path percent-encoded
    once, exactly as it will be sent.
    """
    amz_date = (now.astimezone(UTC) if now.tzinfo else now).strftime("%Y%m%dT%H%M%SZ")
    parts = urlsplit(url)
    signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    names = sorted(signed)
    signed_names = ";".join(names)
    text = "\n".join(
        (
            method,
            # Non-S3 services encode the already-encoded path once more.
            quote(parts.path or "/", safe="/~"),
            _canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    return CanonicalRequest(amz_date, scope, signed_names, text)


def sign_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Host``, ``X-Amz-Date``, the session token and ``Authorization``.

    ``url`` must already carry its path percent-encoded once, exactly as it will be sent.
    """
    to_sign = dict(headers)
    if credentials.session_token:
        to_sign["X-Amz-Security-Token"] = credentials.session_token
    request = canonical_request(
        method, url, to_sign, body, region=region, service=service, now=now or datetime.now(UTC)
    )
    key = _signing_key(credentials.secret_access_key, request.amz_date[:8], region, service)
    signature = hmac.new(
        key, request.string_to_sign(_ALGORITHM).encode(), hashlib.sha256
    ).hexdigest()
    out = dict(headers)
    out["Host"] = urlsplit(url).netloc
    out["X-Amz-Date"] = request.amz_date
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    out["Authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key_id}/{request.scope}, "
        f"SignedHeaders={request.signed_names}, Signature={signature}"
    )
    return out


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        key, _, value = item.partition("=")
        pairs.append(
            (quote(unquote(key), safe=_UNRESERVED), quote(unquote(value), safe=_UNRESERVED))
        )
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


@lru_cache(maxsize=32)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), day)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
