"""Static keys and the choice of source: config, systemd credentials, environment, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bedrock_gw.aws.credentials import BotocoreChainFetcher, CredentialSourceError
from bedrock_gw.aws.sources import credential_fetcher
from bedrock_gw.aws.static import StaticFetcher, static_fetcher
from bedrock_gw.cli import main
from bedrock_gw.config import AwsSettings, ConfigError, StaticCredentialSettings, load_settings

ENV = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}


@pytest.fixture
def creds_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "credentials"
    directory.mkdir()
    (directory / "aws-secret-access-key").write_text("systemd-secret\n")
    (directory / "aws-access-key-id").write_text("AKIASYSTEMD\n")
    return directory


@pytest.mark.parametrize(
    ("settings", "environ", "expected"),
    [
        pytest.param(
            {"access_key_id": "AKIACONFIG", "secret_access_key": "config-secret"},
            ENV,
            ("AKIACONFIG", "config-secret", None),
            id="config-wins",
        ),
        pytest.param({}, ENV, ("AKIAENV", "env-secret", None), id="environment"),
        pytest.param(
            {},
            {**ENV, "AWS_SESSION_TOKEN": "env-token"},
            ("AKIAENV", "env-secret", "env-token"),
            id="environment-with-token",
        ),
        pytest.param(
            {},
            {**ENV, "CREDENTIALS_DIRECTORY": "<dir>"},
            ("AKIASYSTEMD", "systemd-secret", None),
            id="systemd-over-environment",
        ),
        pytest.param(
            {"access_key_id": "AKIACONFIG"},
            {"CREDENTIALS_DIRECTORY": "<dir>"},
            ("AKIACONFIG", "systemd-secret", None),
            id="id-in-config-secret-from-systemd",
        ),
    ],
)
async def test_static_sources_in_order(
    creds_dir: Path,
    settings: dict[str, str],
    environ: dict[str, str],
    expected: tuple[str, str, str | None],
) -> None:
    """Each value comes from config, else $CREDENTIALS_DIRECTORY/<name>, else AWS_* env."""
    env = {k: (str(creds_dir) if v == "<dir>" else v) for k, v in environ.items()}
    fetcher = static_fetcher(StaticCredentialSettings.model_validate(settings), env)
    creds = await fetcher.fetch()
    assert (creds.access_key_id, creds.secret_access_key, creds.session_token) == expected
    assert creds.expires_at is None


def test_description_names_origins_not_values(creds_dir: Path) -> None:
    """The source description (shown in /health and logs) says where, never what."""
    fetcher = static_fetcher(
        StaticCredentialSettings(access_key_id="AKIACONFIG"),
        {"CREDENTIALS_DIRECTORY": str(creds_dir)},
    )
    assert "systemd credential aws-secret-access-key" in fetcher.description
    assert "systemd-secret" not in fetcher.description


async def test_custom_credential_names(creds_dir: Path) -> None:
    """The systemd credential names are configurable."""
    (creds_dir / "bedrock-secret").write_text("renamed-secret")
    fetcher = static_fetcher(
        StaticCredentialSettings(
            access_key_id="AKIACONFIG", secret_access_key_credential="bedrock-secret"
        ),
        {"CREDENTIALS_DIRECTORY": str(creds_dir)},
    )
    assert (await fetcher.fetch()).secret_access_key == "renamed-secret"


@pytest.mark.parametrize(
    ("settings", "environ", "fragments"),
    [
        pytest.param({}, {}, ["no access key id", "no secret access key", "not set"], id="none"),
        pytest.param(
            {"access_key_id": "AKIACONFIG"},
            {"CREDENTIALS_DIRECTORY": "/nonexistent-dir"},
            ["no secret access key", "$CREDENTIALS_DIRECTORY/aws-secret-access-key"],
            id="secret-missing",
        ),
    ],
)
def test_incomplete_static_source_is_a_start_up_error(
    settings: dict[str, str], environ: dict[str, str], fragments: list[str]
) -> None:
    """Without a key id or secret, start-up fails naming every place that was tried."""
    with pytest.raises(CredentialSourceError) as caught:
        static_fetcher(StaticCredentialSettings.model_validate(settings), environ)
    for fragment in fragments:
        assert fragment in caught.value.problem
    assert isinstance(caught.value, ConfigError)


async def test_factory_picks_the_configured_source(creds_dir: Path) -> None:
    """credentials = "default" is botocore's chain; "static" reads the access key."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        default = credential_fetcher(AwsSettings(), executor=pool, environ={})
        static = credential_fetcher(
            AwsSettings(credentials="static"),
            executor=pool,
            environ={"CREDENTIALS_DIRECTORY": str(creds_dir)},
        )
    assert isinstance(default, BotocoreChainFetcher)
    assert isinstance(static, StaticFetcher)
    assert (await static.fetch()).access_key_id == "AKIASYSTEMD"


# ------------------------------------------------------------------ config validation


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        pytest.param(
            '[aws]\ncredentials = "roles-anywhere"\n',
            "needs these keys in [aws.roles_anywhere]: certificate, private_key, "
            "trust_anchor_arn, profile_arn, role_arn",
            id="roles-anywhere-empty",
        ),
        pytest.param(
            '[aws]\ncredentials = "roles-anywhere-inprocess"\n[aws.roles_anywhere]\n'
            'certificate = "c.pem"\nprivate_key = "k.pem"\n',
            "trust_anchor_arn, profile_arn, role_arn",
            id="inprocess-no-arns",
        ),
        pytest.param(
            '[aws]\ncredentials = "roles-anywhere"\n[aws.roles_anywhere]\n'
            'role_arn = "arn:aws:iam::123:role/x"\n',
            "aws.roles_anywhere.role_arn",
            id="bad-role-arn",
        ),
        pytest.param('[aws]\ncredentials = "instance-role"\n', "aws.credentials", id="unknown"),
        pytest.param(
            '[aws]\ncredentials = "static"\n[aws.static]\nsecret_access_key = ""\n',
            "secret_access_key is empty",
            id="static-empty-secret",
        ),
        pytest.param(
            "[aws.roles_anywhere]\nsession_duration = 60\n",
            "aws.roles_anywhere.session_duration",
            id="short-session",
        ),
    ],
)
def test_check_config_reports_incomplete_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, fragment: str
) -> None:
    """check-config fails, naming the missing or bad credential keys."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    assert main(["check-config", str(path)]) == 1
    assert fragment in capsys.readouterr().err


def test_roles_anywhere_config_is_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full [aws.roles_anywhere] parses; the region defaults to the trust anchor's; env wins."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[aws]\ncredentials = "roles-anywhere"\n[aws.roles_anywhere]\n'
        'certificate = "/etc/bedrock-gw/cert.pem"\nprivate_key = "/etc/bedrock-gw/key.pem"\n'
        'trust_anchor_arn = "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/a"\n'
        'profile_arn = "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p"\n'
        'role_arn = "arn:aws:iam::123456789012:role/bedrock-gw"\n'
    )
    monkeypatch.setenv("BEDROCK_GW_AWS__ROLES_ANYWHERE__HELPER", "/opt/aws/aws_signing_helper")
    ra = load_settings(path).aws.roles_anywhere
    assert ra.effective_region() == "eu-west-1"
    assert ra.helper == "/opt/aws/aws_signing_helper"


def test_static_secret_is_not_printed() -> None:
    """A secret access key in the config never shows in the settings' repr."""
    settings = AwsSettings(
        credentials="static",
        static=StaticCredentialSettings(
            access_key_id="AKIA1", secret_access_key=SecretStr("hunter2")
        ),
    )
    assert "hunter2" not in repr(settings)
