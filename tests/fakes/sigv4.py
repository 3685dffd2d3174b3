"""Server-side verification of AWS Signature Version 4, as AWS front ends do it.

The signature is recomputed from the request exactly as it arrived on the socket (raw path,
raw query, header values, body bytes), so a client that signs one thing and sends another
fails here as it would against AWS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .errors import AwsError

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = dt.timedelta(minutes=5)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_BAD_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


@dataclass(frozen=True)
class Authorization:
    """The parsed ``Authorization`` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AwsError(
            "IncompleteSignatureException", f"Unsupported AWS 'algorithm': '{algorithm}'."
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise AwsError(
            "IncompleteSignatureException",
            " ".join(f"Authorization header requires '{k}' parameter." for k in missing),
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AwsError(
            "IncompleteSignatureException",
            f"Credential should be scoped to a valid region and service: '{fields['Credential']}'.",
        )
    return Authorization(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
    )


def canonical_uri(raw_path: str) -> str:
    # AWS (outside S3) URI-encodes the path as received once more: '%3A' becomes '%253A'.
    return quote(raw_path or "/", safe="/~")


def canonical_query(raw_query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        # Decode then re-encode so that any legal client encoding yields the same string.
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(signed: Iterable[str], headers: Iterable[tuple[str, str]]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    return "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in signed)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SigV4Verifier:
    """Checks requests against a fixed set of credentials, scope and clock."""

    def __init__(
        self,
        credentials: Mapping[str, tuple[str, str | None]],
        region: str,
        service: str = "bedrock",
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.service = service
        self.clock = clock

    def verify(
        self,
        method: str,
        raw_target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
    ) -> str:
        """Return the access key id that validly signed the request, else raise AwsError."""
        header_list = [(k.lower(), v) for k, v in headers]
        lookup = dict(header_list)
        if "authorization" not in lookup:
            raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        auth = parse_authorization(lookup["authorization"])
        known = self.credentials.get(auth.access_key_id)
        if known is None:
            raise AwsError("UnrecognizedClientException", _BAD_TOKEN)
        secret, token = known
        self._check_scope(auth)
        amz_date = self._check_date(auth, lookup.get("x-amz-date"))
        if lookup.get("x-amz-security-token") != token:
            raise AwsError("UnrecognizedClientException", _BAD_TOKEN)
        for required in ("host", "x-amz-date"):
            if required not in auth.signed_headers:
                raise AwsError(
                    "InvalidSignatureException",
                    f"'{required}' must be a 'SignedHeader' in the AWS Authorization.",
                )
        path, _, query = raw_target.partition("?")
        canonical = "\n".join(
            [
                method.upper(),
                canonical_uri(path),
                canonical_query(query),
                canonical_headers(auth.signed_headers, header_list),
                ";".join(auth.signed_headers),
                self._payload_hash(lookup, body),
            ]
        )
        scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
        to_sign = "\n".join(
            [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = signing_key(secret, auth.date, auth.region, auth.service)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, auth.signature):
            raise AwsError("InvalidSignatureException", _MISMATCH)
        return auth.access_key_id

    def _check_scope(self, auth: Authorization) -> None:
        if auth.service != self.service:
            # Real Bedrock rejects 'bedrock-runtime' here: the signing name is 'bedrock'.
            raise AwsError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{self.service}'. ",
            )
        if auth.region != self.region:
            raise AwsError(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{auth.region}'. ",
            )

    def _check_date(self, auth: Authorization, amz_date: str | None) -> str:
        if amz_date is None:
            raise AwsError(
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a "
                "'Date' header.",
            )
        try:
            when = dt.datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            raise AwsError(
                "IncompleteSignatureException",
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.",
            ) from None
        if amz_date[:8] != auth.date:
            raise AwsError(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        now = self.clock()
        stamp = now.strftime(AMZ_DATE_FORMAT)
        if when < now - MAX_SKEW:
            earliest = (now - MAX_SKEW).strftime(AMZ_DATE_FORMAT)
            raise AwsError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 5 min.)",
            )
        if when > now + MAX_SKEW:
            latest = (now + MAX_SKEW).strftime(AMZ_DATE_FORMAT)
            raise AwsError(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than {latest} "
                f"({stamp} + 5 min.)",
            )
        return amz_date

    @staticmethod
    def _payload_hash(headers: Mapping[str, str], body: bytes) -> str:
        actual = hashlib.sha256(body).hexdigest()
        declared = headers.get("x-amz-content-sha256")
        if declared is None:
            return actual
        if declared not in (UNSIGNED_PAYLOAD, actual):
            raise AwsError(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        return declared
