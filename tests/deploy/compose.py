"""Reads docker-compose.yml the way docker compose does: YAML, then ${VAR} interpolation.

`docker compose config` would do this, but the compose plugin is not installed on the
project's machines (only the docker client is), so the tests resolve variables themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"

# $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise MissingVariableError(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def _resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _resolve(value, env) for key, value in node.items()}
    return node


def raw_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose model with variables resolved from ``env`` (default: none set)."""
    resolved = _resolve(raw_compose(), env or {})
    assert isinstance(resolved, dict)
    return resolved


def referenced_variables() -> set[str]:
    """Variables compose reads from the host: ${VAR} references and `- NAME` pass-throughs."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    names = {
        match.group("name") or match.group("bare")
        for match in _VARIABLE.finditer(text)
        if not match.group("escaped")
    }
    for service in raw_compose()["services"].values():
        names |= {name for name, value in environment(service).items() if value is None}
    return names


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's `environment:` as a dict; None marks a pass-through (`- NAME`)."""
    entries = service.get("environment") or []
    if isinstance(entries, dict):
        return {k: None if v is None else str(v) for k, v in entries.items()}
    result: dict[str, str | None] = {}
    for entry in entries:
        name, sep, value = str(entry).partition("=")
        result[name] = value if sep else None
    return result


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(host_ip, host_port, container_port) of each short-syntax `ports:` entry."""
    result = []
    for entry in service.get("ports") or []:
        assert isinstance(entry, str), f"use the short 'ip:host:container' syntax: {entry!r}"
        host_ip, _, rest = entry.rpartition(":")
        host_ip, _, host_port = host_ip.rpartition(":")
        result.append((host_ip, host_port, rest))
    return result
