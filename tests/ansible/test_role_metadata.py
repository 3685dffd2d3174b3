"""The role documents every variable three times, and the three agree.

defaults/main.yml (with a comment each), meta/argument_specs.yml (type, default, description)
and the role README must name the same variables with the same defaults; every bedrock_gw_*
name used anywhere in the role must be one of them. Pure file checks: no Ansible needed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "bedrock_gw"


def load(relative: str) -> Any:
    return yaml.safe_load((ROLE / relative).read_text())


def defaults() -> dict[str, Any]:
    return dict(load("defaults/main.yml"))


def specs() -> dict[str, Any]:
    return dict(load("meta/argument_specs.yml")["argument_specs"]["main"]["options"])


def test_defaults_and_argument_specs_name_the_same_variables() -> None:
    """Every default has an argument spec and every argument spec a default."""
    assert sorted(defaults()) == sorted(specs())


@pytest.mark.parametrize("name", sorted(defaults()))
def test_argument_spec_default_matches(name: str) -> None:
    """The spec's default is the value defaults/main.yml sets, and the spec has a type and a
    description."""
    spec = specs()[name]
    assert spec.get("default") == defaults()[name]
    assert spec.get("type") in {"str", "bool", "int", "list", "dict"}
    assert spec.get("description")


def test_every_default_has_a_comment() -> None:
    """Each variable in defaults/main.yml sits under a comment line that explains it."""
    lines = (ROLE / "defaults" / "main.yml").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^bedrock_gw_\w+:", line):
            assert lines[number - 1].startswith("# "), line


def test_every_variable_is_prefixed() -> None:
    """The role's public variables all start with bedrock_gw_ (internal ones with _bedrock_gw_)."""
    for name in defaults():
        assert name.startswith("bedrock_gw_")
    internal = load("vars/main.yml")
    assert all(name.startswith("_bedrock_gw_") for name in internal)


def readme_default(value: Any) -> str:
    """How the README's table shows a default: as JSON, long lists and tables by reference."""
    if isinstance(value, (list, dict)) and len(json.dumps(value)) > 40:
        return "see defaults/main.yml"
    return f"`{json.dumps(value)}`"


def test_readme_lists_every_variable_with_its_default() -> None:
    """The role README's table has a row for each variable, showing its default."""
    readme = (ROLE / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(bedrock_gw_\w+)` \| (.*?) \|", readme, re.MULTILINE))
    assert sorted(rows) == sorted(defaults())
    for name, value in defaults().items():
        assert rows[name] == readme_default(value).replace("|", "\\|"), name


def test_role_uses_no_undeclared_variable() -> None:
    """Every bedrock_gw_* name in tasks, handlers, templates and vars is declared, so a typo
    cannot silently render as an undefined variable."""
    declared = set(defaults())
    undeclared = {
        f"{path.relative_to(ROLE)}: {name}"
        for path in ROLE.rglob("*")
        if path.is_file() and path.parent.name in {"tasks", "handlers", "templates", "vars"}
        # Not preceded by "_": internal names (_bedrock_gw_*) are the role's own business.
        for name in re.findall(r"(?<![\w])bedrock_gw_[a-z0-9_]+", path.read_text())
        if name not in declared
    }
    assert not undeclared
