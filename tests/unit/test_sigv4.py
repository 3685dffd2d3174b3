"""aws/sigv4 and aws/sigv4_x509: every signature equals what botocore computes for the request."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bedrock_gw.aws.credentials import AwsCredentials
from bedrock_gw.aws.sigv4 import encode_path_segment, sign_headers
from bedrock_gw.aws.sigv4_x509 import X509Identity, sign_headers_x509
from tests.fakes.rolesanywhere import issue, new_key

NOW = dt.datetime(2025, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
KEYS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
WITH_TOKEN = AwsCredentials("ASIAEXAMPLE", "secret/with+chars", "FwoGZXIvYXdzEBYaD//token==")
RUNTIME = "https://bedrock-runtime.us-east-1.amazonaws.com"
JSON = {"Content-Type": "application/json"}


def _botocore_authorization(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AWSRequest:
    monkeypatch.setattr(
        "botocore.auth.get_current_datetime", lambda *a, **k: NOW.replace(tzinfo=None)
    )
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    boto_credentials = Credentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    SigV4Auth(boto_credentials, service, region).add_auth(request)
    return request


CASES = [
    pytest.param(
        "POST",
        f"{RUNTIME}/model/{encode_path_segment('anthropic.claude-3-haiku-20240307-v1:0')}/converse",
        JSON,
        b'{"messages":[]}',
        KEYS,
        "us-east-1",
        "bedrock",
        id="model-id-with-colon",
    ),
    pytest.param(
        "POST",
        f"{RUNTIME}/model/"
        + encode_path_segment(
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
        )
        + "/converse-stream",
        {**JSON, "Accept": "application/vnd.amazon.eventstream"},
        b"{}",
        KEYS,
        "us-east-1",
        "bedrock",
        id="arn-with-slash",
    ),
    pytest.param(
        "GET",
        "https://bedrock.eu-west-1.amazonaws.com/inference-profiles"
        "?typeEquals=SYSTEM_DEFINED&nextToken=a%2Fb%3D%3D&maxResults=5",
        {},
        b"",
        KEYS,
        "eu-west-1",
        "bedrock",
        id="query-string",
    ),
    pytest.param(
        "POST",
        f"{RUNTIME}/model/amazon.titan-embed-text-v2%3A0/invoke",
        JSON,
        b'{"inputText":"hi"}',
        WITH_TOKEN,
        "us-east-1",
        "bedrock",
        id="session-token",
    ),
    pytest.param(
        "POST",
        "http://127.0.0.1:4566/",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.GetParameter"},
        b'{"Name":"/bedrock-gw/api-key-secret-arn","WithDecryption":true}',
        WITH_TOKEN,
        "us-east-1",
        "ssm",
        id="ssm-json-rpc-on-a-port",
    ),
    pytest.param(
        "POST",
        "https://secretsmanager.eu-central-1.amazonaws.com/",
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
        b'{"SecretId":"arn:aws:secretsmanager:eu-central-1:1:secret:k-AbC","VersionStage":"AWSCURRENT"}',
        KEYS,
        "eu-central-1",
        "secretsmanager",
        id="secrets-manager",
    ),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "creds", "region", "service"), CASES)
def test_signature_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    creds: AwsCredentials,
    region: str,
    service: str,
) -> None:
    """sign_headers yields the same Authorization, date and token headers as botocore."""
    ours = sign_headers(
        method, url, headers, body, credentials=creds, region=region, service=service, now=NOW
    )
    theirs = _botocore_authorization(
        method, url, headers, body, creds, region, service, monkeypatch
    )
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours["X-Amz-Date"] == theirs.headers["X-Amz-Date"] == "20250314T150926Z"
    assert ours.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")


def test_signature_changes_with_the_body() -> None:
    """A different body gives a different signature (the comparison above can fail)."""
    url = f"{RUNTIME}/model/m/converse"
    one = sign_headers(
        "POST", url, JSON, b"{}", credentials=KEYS, region="us-east-1", service="bedrock", now=NOW
    )
    two = sign_headers(
        "POST", url, JSON, b"{ }", credentials=KEYS, region="us-east-1", service="bedrock", now=NOW
    )
    assert one["Authorization"] != two["Authorization"]


def test_model_id_is_encoded_like_botocore() -> None:
    """':' and '/' in model ids and ARNs are percent-encoded in the path label."""
    assert encode_path_segment("a.b-v1:0") == "a.b-v1%3A0"
    assert (
        encode_path_segment("arn:aws:bedrock:x:1:p/abc") == "arn%3Aaws%3Abedrock%3Ax%3A1%3Ap%2Fabc"
    )


@pytest.mark.parametrize(
    ("kind", "algorithm"),
    [
        pytest.param("rsa", "AWS4-X509-RSA-SHA256", id="rsa"),
        pytest.param("ec", "AWS4-X509-ECDSA-SHA256", id="ecdsa"),
    ],
)
def test_x509_signature_verifies_over_botocores_canonical_request(
    monkeypatch: pytest.MonkeyPatch, kind: str, algorithm: str
) -> None:
    """The X.509 variant signs botocore's string to sign with the certificate's key."""
    key = new_key(kind)
    identity = issue("gateway", key)
    url = "https://rolesanywhere.us-east-1.amazonaws.com/sessions"
    body = b'{"durationSeconds":3600}'
    ours = sign_headers_x509(
        "POST",
        url,
        {"Content-Type": "application/json"},
        body,
        identity=X509Identity(identity.certificate, key),
        region="us-east-1",
        now=NOW,
    )
    serial = identity.certificate.serial_number
    assert ours["Authorization"].startswith(
        f"{algorithm} Credential={serial}/20250314/us-east-1/rolesanywhere/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature="
    )
    # Let botocore canonicalise the very headers we send, then check our signature over it.
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={k: v for k, v in ours.items() if k != "Authorization"},
    )
    request.context["timestamp"] = ours["X-Amz-Date"]
    signer = SigV4Auth(Credentials("unused", "unused"), "rolesanywhere", "us-east-1")
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical).replace(
        "AWS4-HMAC-SHA256", algorithm, 1
    )
    signature = bytes.fromhex(ours["Authorization"].rsplit("Signature=", 1)[1])
    public = identity.certificate.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
        with pytest.raises(InvalidSignature):
            public.verify(
                signature, b"x" + string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, string_to_sign.encode(), ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            public.verify(signature, b"x" + string_to_sign.encode(), ec.ECDSA(hashes.SHA256()))
