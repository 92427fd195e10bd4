"""deploy/scale.yml resolves with the real Docker Compose, and deploy/haproxy.cfg is the
config deploy/haproxy.py renders for it, accepted by the real HAProxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.haproxy import Listen, compose_pairs, render
from tests.deploy.compose import COMPOSE_BINARY, COMPOSE_FILE, PROJECT_ROOT, published_ports

SCALE_FILE = PROJECT_ROOT / "deploy" / "scale.yml"
HAPROXY_CFG = PROJECT_ROOT / "deploy" / "haproxy.cfg"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker compose -f docker-compose.yml -f deploy/scale.yml config`, with an empty .env.

    The project directory is the repository (the override's `extends` and its config mount
    are relative to it); --env-file keeps a developer's .env out."""
    home: Path = tmp_path_factory.mktemp("compose-scale")
    empty_env = home / "empty.env"
    empty_env.write_text("", encoding="utf-8")
    files = ["-f", str(COMPOSE_FILE), "-f", str(SCALE_FILE)]
    project = ["--project-directory", str(PROJECT_ROOT), "--env-file", str(empty_env)]
    result = subprocess.run(
        [str(COMPOSE_BINARY), *files, *project, "config", "--format", "json"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)["services"]
    return resolved


def test_scale_file_adds_a_second_pair_a_second_vllm_the_router_and_the_proxy(
    services: dict[str, Any],
) -> None:
    assert set(services) == {"vllm", "vllm2", "router", "api", "api2", "ui", "ui2", "proxy"}


def test_only_the_proxy_is_published(services: dict[str, Any]) -> None:
    published = {name: published_ports(s) for name, s in services.items() if s.get("ports")}
    assert published == {
        "proxy": [("127.0.0.1", "8000", 8000), ("127.0.0.1", "8501", 8501)],
    }


def test_each_api_calls_the_router_and_names_its_replica(services: dict[str, Any]) -> None:
    named = {
        name: (services[name]["environment"]["PGPT_VLLM_URL"],
               services[name]["environment"]["PGPT_REPLICA_ID"])
        for name in ("api", "api2")
    }  # fmt: skip
    assert named == {
        "api": ("http://router:8000", "api1"),
        "api2": ("http://router:8000", "api2"),
    }


def test_each_ui_calls_the_api_beside_it(services: dict[str, Any]) -> None:
    urls = {name: services[name]["environment"]["PGPT_API_URL"] for name in ("ui", "ui2")}
    assert urls == {"ui": "http://api:8000", "ui2": "http://api2:8000"}


def test_router_sends_to_both_vllm_replicas_by_session_hash(services: dict[str, Any]) -> None:
    command = services["router"]["command"]
    workers = command[command.index("--worker-urls") + 1 : command.index("--worker-urls") + 3]
    assert (workers, "--policy=consistent_hash" in command) == (
        ["http://vllm:8000", "http://vllm2:8000"],
        True,
    )


def test_haproxy_cfg_in_the_repository_is_the_rendered_one() -> None:
    assert HAPROXY_CFG.read_text(encoding="utf-8") == render(compose_pairs(2), Listen()), (
        "regenerate it: .venv/bin/python -m deploy.haproxy > deploy/haproxy.cfg"
    )


def test_haproxy_accepts_the_config() -> None:
    haproxy = shutil.which("haproxy")
    assert haproxy is not None, "HAProxy is not installed: run `make setup-proxy`"
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(HAPROXY_CFG), "-L", "pgpt-proxy"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # Warnings only that the compose hostnames (api, ui2, ...) do not resolve here.
    assert (checked.returncode, checked.stdout.splitlines()[-1]) == (
        0,
        "Configuration file is valid",
    )
