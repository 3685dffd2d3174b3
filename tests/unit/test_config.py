"""Settings: TOML plus environment, strict about unknown keys, frozen once built."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from bedrock_gw.cli import main
from bedrock_gw.config import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BEDROCK_GW_"):
            monkeypatch.delenv(name)


def test_example_config_is_valid() -> None:
    """The shipped example parses and keeps the safe defaults."""
    settings = load_settings(EXAMPLE)
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.aws.region == "us-east-1"


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEDROCK_GW_<SECTION>__<KEY> wins over the file, key by key."""
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("BEDROCK_GW_SERVER__PORT", "8001")
    settings = load_settings(path)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 8001)


def test_every_problem_is_reported(tmp_path: Path) -> None:
    """Unknown keys and bad values are all listed, each with its dotted key."""
    path = tmp_path / "c.toml"
    path.write_text('[server]\nprot = 1\nport = "x"\n[nope]\na = 1\n[aws]\nregion = "Mars"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    assert "server.prot: unknown key" in problems
    assert "nope: unknown key" in problems
    assert any(p.startswith("server.port:") for p in problems)
    assert any(p.startswith("aws.region:") for p in problems)


def test_invalid_toml(tmp_path: Path) -> None:
    """A syntax error is a config error, not a crash."""
    path = tmp_path / "c.toml"
    path.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_settings_are_frozen() -> None:
    """Built settings cannot be changed afterwards."""
    settings = load_settings(EXAMPLE)
    with pytest.raises(pydantic.ValidationError):
        settings.server.port = 1  # type: ignore[misc]


def test_secrets_are_not_printed() -> None:
    """API keys never appear in the settings' repr."""
    assert "change-me-example-key" not in repr(load_settings(EXAMPLE))


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config exits 0 on a valid file and 1 listing problems on a bad one."""
    assert main(["check-config", "--config", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nportt = 1\n")
    assert main(["check-config", "--config", str(bad)]) == 1
    assert "server.portt: unknown key" in capsys.readouterr().err


def _keys(model: type[pydantic.BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            keys.extend(_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


_KEY_LINE = re.compile(r"^(# )?[a-z_]+ = ")


def test_example_documents_every_key() -> None:
    """Every setting appears in config.example.toml under its section, below a comment
    (directly, or as part of a group of keys that one comment introduces)."""
    from bedrock_gw.config import Settings

    section = ""
    documented: set[str] = set()
    commented = False
    for line in EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        is_key = _KEY_LINE.match(stripped) is not None
        if stripped.startswith("[") and stripped.endswith("]"):
            section, commented = stripped.strip("[]") + ".", False
        elif is_key:
            key = stripped.lstrip("# ").split("=", 1)[0].strip()
            if commented:
                documented.add(section + key)
        else:
            commented = stripped.startswith("#")
    missing = [key for key in _keys(Settings) if key not in documented]
    assert missing == []
