"""The X.509 variant of SigV4 that IAM Roles Anywhere's CreateSession expects.

Same canonical request as SigV4, plus the certificate in ``X-Amz-X509`` (base64 DER, signed
like any header); the string to sign names ``AWS4-X509-RSA-SHA256`` or
``AWS4-X509-ECDSA-SHA256`` and is signed with the certificate's private key (PKCS#1 v1.5 or
DER-encoded ECDSA, both over SHA-256), hex-encoded; the credential is the certificate's serial
number in decimal. https://docs.aws.amazon.com/rolesanywhere/latest/userguide/authentication-sign-process.html
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bedrock_gw.aws.credentials import CredentialSourceError
from bedrock_gw.aws.sigv4 import canonical_request

__all__ = ["X509Identity", "load_identity", "sign_headers_x509"]

logger = logging.getLogger(__name__)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class X509Identity:
    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def algorithm(self) -> str:
        kind = "RSA" if isinstance(self.private_key, rsa.RSAPrivateKey) else "ECDSA"
        return f"AWS4-X509-{kind}-SHA256"

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def sign_headers_x509(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    identity: X509Identity,
    region: str,
    service: str = "rolesanywhere",
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Host``, ``X-Amz-Date``, ``X-Amz-X509`` and ``Authorization``."""
    out = dict(headers)
    out["X-Amz-X509"] = _der_b64(identity.certificate)
    if identity.chain:
        out["X-Amz-X509-Chain"] = ",".join(_der_b64(cert) for cert in identity.chain)
    request = canonical_request(
        method, url, out, body, region=region, service=service, now=now or datetime.now(UTC)
    )
    signature = identity.sign(request.string_to_sign(identity.algorithm).encode()).hex()
    out["Host"] = urlsplit(url).netloc
    out["X-Amz-Date"] = request.amz_date
    out["Authorization"] = (
        f"{identity.algorithm} Credential={identity.certificate.serial_number}/{request.scope}, "
        f"SignedHeaders={request.signed_names}, Signature={signature}"
    )
    return out


def _der_b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def load_identity(certificate: Path, private_key: Path, chain: Path | None = None) -> X509Identity:
    """Read the PEM files; raises ``CredentialSourceError`` with the file and the reason."""
    cert = _load_certificates(certificate)[0]
    key_bytes = _read(private_key, "private key")
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as exc:
        # TypeError: the key is encrypted; the daemon has nobody to ask for a passphrase.
        raise CredentialSourceError(
            f"{private_key}: not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CredentialSourceError(f"{private_key}: Roles Anywhere needs an RSA or EC key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != (
        cert.public_key().public_bytes(serialization.Encoding.DER, public)
    ):
        raise CredentialSourceError(f"{private_key} is not the key of {certificate}")
    if cert.not_valid_after_utc < datetime.now(UTC):
        logger.warning(
            "the Roles Anywhere certificate %s expired on %s; CreateSession will fail",
            certificate,
            cert.not_valid_after_utc.isoformat(),
        )
    intermediates = tuple(_load_certificates(chain)) if chain is not None else ()
    return X509Identity(cert, key, intermediates)


def _load_certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CredentialSourceError(f"{path}: not a PEM certificate ({exc})") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialSourceError(
            f"cannot read the {what} {path}: {exc.strerror or exc}"
        ) from None
