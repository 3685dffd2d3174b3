"""A fake IAM Roles Anywhere ``CreateSession`` endpoint that checks X.509 SigV4 signatures.

It does what the service does before issuing credentials: the certificate in ``X-Amz-X509``
must chain (through ``X-Amz-X509-Chain``) to the trust anchor's CA, its serial number must be
the credential in ``Authorization``, and the signature over the canonical request must verify
with the certificate's public key under the named algorithm. ``Pki`` makes throwaway CAs,
certificates and keys for it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from .sigv4 import canonical_headers, canonical_query, canonical_uri

TRUST_ANCHOR_ARN = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-0001"
PROFILE_ARN = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/pr-0001"
ROLE_ARN = "arn:aws:iam::123456789012:role/bedrock-gw"
_ALGORITHMS = {
    "AWS4-X509-RSA-SHA256": rsa.RSAPublicKey,
    "AWS4-X509-ECDSA-SHA256": ec.EllipticCurvePublicKey,
}
_REQUIRED_SIGNED = ("content-type", "host", "x-amz-date", "x-amz-x509")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class Rejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class SessionRequest:
    """One CreateSession call as the fake saw it."""

    serial: int | None = None
    algorithm: str | None = None
    body: Any = None
    issued: str | None = None
    """The access key id handed out, or None when the call was rejected."""
    error: str | None = None


@dataclass
class FakeRolesAnywhere:
    ca: x509.Certificate
    access_key_ids: Sequence[str] = ("ASIARA0001", "ASIARA0002", "ASIARA0003")
    """Handed out in turn; the last one repeats."""
    expires_in: float = 3600.0
    requests: list[SessionRequest] = field(default_factory=list)
    region: str = "us-east-1"
    _runner: web.AppRunner | None = None
    _port: int = 0

    async def __aenter__(self) -> FakeRolesAnywhere:
        app = web.Application()
        app.router.add_post("/sessions", self._create_session)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @staticmethod
    def secret_of(access_key_id: str) -> tuple[str, str]:
        return f"secret-of-{access_key_id}", f"token-of-{access_key_id}"

    async def _create_session(self, request: web.Request) -> web.Response:
        record = SessionRequest()
        self.requests.append(record)
        body = await request.read()
        try:
            self._verify(request, body, record)
            record.body = json.loads(body)
            self._check_body(record.body)
        except Rejected as rejected:
            record.error = rejected.code
            return web.json_response(
                {"message": rejected.message},
                status=rejected.status,
                headers={"x-amzn-ErrorType": rejected.code},
            )
        issued = self.access_key_ids[min(len(self.requests) - 1, len(self.access_key_ids) - 1)]
        record.issued = issued
        secret, token = self.secret_of(issued)
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.expires_in)
        return web.json_response(
            {
                "credentialSet": [
                    {
                        "assumedRoleUser": {"arn": ROLE_ARN, "assumedRoleId": "AROA:x"},
                        "credentials": {
                            "accessKeyId": issued,
                            "secretAccessKey": secret,
                            "sessionToken": token,
                            "expiration": expiry.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        },
                        "packedPolicySize": 0,
                        "roleArn": ROLE_ARN,
                        "sourceIdentity": "CN=gateway",
                    }
                ],
                "subjectArn": "arn:aws:rolesanywhere:us-east-1:123456789012:subject/s-1",
            },
            status=201,
        )

    def _verify(self, request: web.Request, body: bytes, record: SessionRequest) -> None:
        algorithm, _, rest = request.headers.get("Authorization", "").partition(" ")
        record.algorithm = algorithm
        if algorithm not in _ALGORITHMS:
            raise Rejected(403, "AccessDeniedException", f"Unsupported algorithm {algorithm!r}")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        scope = fields.get("Credential", "").split("/")
        if len(scope) != 5 or scope[2:] != [self.region, "rolesanywhere", "aws4_request"]:
            raise Rejected(403, "AccessDeniedException", "Bad credential scope")
        certificate = _certificate(request.headers.get("X-Amz-X509", ""))
        record.serial = certificate.serial_number
        if scope[0] != str(certificate.serial_number):
            raise Rejected(403, "AccessDeniedException", "Credential is not the serial number")
        chain = [
            _certificate(c) for c in request.headers.get("X-Amz-X509-Chain", "").split(",") if c
        ]
        self._check_trust(certificate, chain)
        signed = fields.get("SignedHeaders", "").split(";")
        if any(name not in signed for name in _REQUIRED_SIGNED):
            raise Rejected(403, "AccessDeniedException", "A required header is not signed")
        amz_date = request.headers.get("X-Amz-Date", "")
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        if abs((dt.datetime.now(dt.UTC) - when).total_seconds()) > 300 or amz_date[:8] != scope[1]:
            raise Rejected(403, "AccessDeniedException", "Signature date out of range")
        path, _, query = request.raw_path.partition("?")
        canonical = "\n".join(
            [
                request.method,
                canonical_uri(path),
                canonical_query(query),
                canonical_headers(
                    signed, [(k.decode(), v.decode()) for k, v in request.raw_headers]
                ),
                ";".join(signed),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        string_to_sign = "\n".join(
            [
                algorithm,
                amz_date,
                "/".join(scope[1:]),
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        _check_signature(certificate, algorithm, string_to_sign, fields.get("Signature", ""))

    def _check_trust(self, certificate: x509.Certificate, chain: list[x509.Certificate]) -> None:
        issued = certificate
        try:
            for issuer in [*chain, self.ca]:
                if issued.issuer == issuer.subject:
                    issued.verify_directly_issued_by(issuer)
                    issued = issuer
        except (ValueError, TypeError, InvalidSignature):
            raise Rejected(403, "AccessDeniedException", "Untrusted certificate") from None
        if issued.subject != self.ca.subject:
            raise Rejected(403, "AccessDeniedException", "Untrusted certificate")

    @staticmethod
    def _check_body(document: Any) -> None:
        expected = {
            "profileArn": PROFILE_ARN,
            "roleArn": ROLE_ARN,
            "trustAnchorArn": TRUST_ANCHOR_ARN,
        }
        if not isinstance(document, dict) or any(document.get(k) != v for k, v in expected.items()):
            raise Rejected(400, "ValidationException", "Unknown profile, role or trust anchor")
        duration = document.get("durationSeconds", 3600)
        if not isinstance(duration, int) or not 900 <= duration <= 43200:
            raise Rejected(400, "ValidationException", "durationSeconds out of range")


def _certificate(header: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        raise Rejected(403, "AccessDeniedException", "Missing or bad X-Amz-X509") from None


def _check_signature(
    certificate: x509.Certificate, algorithm: str, string_to_sign: str, signature_hex: str
) -> None:
    public = certificate.public_key()
    if not isinstance(public, _ALGORITHMS[algorithm]):
        raise Rejected(403, "AccessDeniedException", "Algorithm does not match the key")
    try:
        signature = bytes.fromhex(signature_hex)
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, string_to_sign.encode(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        raise Rejected(403, "AccessDeniedException", "Signature does not verify") from None


# ------------------------------------------------------------------------------ throwaway PKI


@dataclass(frozen=True)
class Identity:
    certificate: x509.Certificate
    key: PrivateKey

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` and ``<stem>.key`` (mode 0600); return their paths."""
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


def new_key(kind: str) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def issue(
    name: str, key: PrivateKey, *, issuer: Identity | None = None, ca: bool = False
) -> Identity:
    """A certificate for ``key``, self-signed when ``issuer`` is None."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    signer = issuer.key if issuer else key
    return Identity(builder.sign(signer, hashes.SHA256()), key)
