""".env.example documents every Settings field and every variable docker-compose.yml reads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from core.settings import Settings, load_settings
from deploy.env_example import (
    COMPOSE_VARIABLES,
    ENV_EXAMPLE,
    REGENERATE_COMMAND,
    env_name,
    render,
    render_default,
)
from tests.deploy.compose import referenced_variables

_ASSIGNMENT = re.compile(r"^#\s?([A-Z][A-Z0-9_]*)=(.*)$")


@pytest.fixture(scope="module")
def documented() -> dict[str, str]:
    """NAME -> value of each commented-out `# NAME=value` line."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            assert match.group(1) not in values, f"{match.group(1)} is listed twice"
            values[match.group(1)] = match.group(2)
    return values


def test_every_setting_is_listed(documented: dict[str, str]) -> None:
    missing = sorted(
        env_name(name) for name in Settings.model_fields if env_name(name) not in documented
    )
    assert not missing, f"not in .env.example: {missing}; regenerate it with: {REGENERATE_COMMAND}"


def test_listed_defaults_are_the_real_defaults(documented: dict[str, str]) -> None:
    for name, field in Settings.model_fields.items():
        shown = documented[env_name(name)].replace("${HOME}", str(Path.home()))
        expected = render_default(field).replace("${HOME}", str(Path.home()))
        assert shown == expected, (
            f"{env_name(name)}: .env.example says {shown!r}, code {expected!r}"
        )


def test_every_compose_variable_is_listed(documented: dict[str, str], tmp_path: Path) -> None:
    referenced = referenced_variables(tmp_path)  # as `docker compose config` resolves them
    missing = sorted(referenced - set(documented))
    assert not missing, f"docker-compose.yml reads undocumented variables: {missing}"
    assert {v.name for v in COMPOSE_VARIABLES} <= referenced


def test_nothing_is_set_by_copying_it() -> None:
    """A copied .env changes nothing until a line is uncommented, and holds no secret."""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        assert not line.strip() or line.startswith("#"), f"active line in .env.example: {line!r}"


def test_file_is_generated_from_the_code() -> None:
    assert ENV_EXAMPLE.read_text(encoding="utf-8") == render(), (
        f".env.example is stale; regenerate it with: {REGENERATE_COMMAND}"
    )


def test_documented_home_path_works_in_a_real_env_file(tmp_path: Path) -> None:
    """Uncommenting the cache_dir line as shown gives the same folder as the default."""
    (tmp_path / ".env").write_text(
        f"PGPT_CACHE_DIR={render_default(Settings.model_fields['cache_dir'])}\n", encoding="utf-8"
    )
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        loaded = load_settings()
    finally:
        os.chdir(previous)
    assert loaded.cache_dir == Settings.model_fields["cache_dir"].get_default(
        call_default_factory=True
    )
