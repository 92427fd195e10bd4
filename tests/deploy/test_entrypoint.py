"""deploy/entrypoint.sh refuses an exposed server without an API key; healthcheck.py probes."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = PROJECT_ROOT / "deploy" / "entrypoint.sh"
HEALTHCHECK = PROJECT_ROOT / "deploy" / "healthcheck.py"
GOOD_KEY = "k" * 32
EX_CONFIG = 78


def run_entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The image's /bin/sh is dash, as on this Debian machine.
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), "echo", "server started"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_starts_without_a_key(bind: str) -> None:
    result = run_entrypoint({"PGPT_BIND": bind})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "server started\n"


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.168.1.10", "::", "[::]", "10.0.0.5"])
def test_exposed_without_a_key_refuses(bind: str) -> None:
    result = run_entrypoint({"PGPT_BIND": bind})
    assert result.returncode == EX_CONFIG
    assert "server started" not in result.stdout
    assert f"PGPT_BIND={bind}" in result.stderr
    assert "PGPT_API_KEY is not set" in result.stderr


def test_empty_key_counts_as_no_key() -> None:
    result = run_entrypoint({"PGPT_BIND": "0.0.0.0", "PGPT_API_KEY": ""})
    assert result.returncode == EX_CONFIG


def test_unset_bind_counts_as_exposed() -> None:
    """`docker run -p 8000:8000` publishes on every interface and sets no PGPT_BIND."""
    result = run_entrypoint({})
    assert result.returncode == EX_CONFIG
    assert "PGPT_BIND is not set" in result.stderr


def test_short_key_refuses() -> None:
    result = run_entrypoint({"PGPT_BIND": "0.0.0.0", "PGPT_API_KEY": "secret"})
    assert result.returncode == EX_CONFIG
    assert "shorter than 16 characters" in result.stderr


@pytest.mark.parametrize("bind", ["0.0.0.0", ""])
def test_exposed_with_a_key_starts(bind: str) -> None:
    result = run_entrypoint({"PGPT_BIND": bind, "PGPT_API_KEY": GOOD_KEY})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "server started\n"
    assert GOOD_KEY not in result.stderr + result.stdout


def test_command_exit_status_is_passed_on() -> None:
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), "sh", "-c", "exit 3"],
        env={"PATH": "/usr/bin:/bin", "PGPT_BIND": "127.0.0.1"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3


# --- healthcheck.py --------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(*args: str, env: dict[str, str] | None = None) -> int:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode


def test_healthcheck_passes_on_2xx(server_port: int) -> None:
    assert run_healthcheck(f"http://127.0.0.1:{server_port}/healthz") == 0


def test_healthcheck_defaults_to_healthz_on_the_api_port(server_port: int) -> None:
    assert run_healthcheck(env={"PGPT_API_PORT": str(server_port)}) == 0


def test_healthcheck_fails_on_an_error_status(server_port: int) -> None:
    assert run_healthcheck(f"http://127.0.0.1:{server_port}/broken") == 1


def test_healthcheck_fails_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    assert run_healthcheck(f"http://127.0.0.1:{free_port}/healthz") == 1
