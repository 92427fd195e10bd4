"""The api and ui commands of docker-compose.yml, run here the way their containers run them.

Each goes through deploy/entrypoint.sh (the image's ENTRYPOINT) and must then satisfy the
compose healthcheck (deploy/healthcheck.py). Differences from the containers, all forced by
this machine: listen on 127.0.0.1 and a free port instead of 0.0.0.0:8000/8501, the
embedder on the CPU, and no vLLM (the api reports it as unavailable but is healthy).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.compose import compose_config
from tests.privacy.servers import model_cache_dir
from tests.support import free_port

pytestmark = pytest.mark.slow  # starts the API and UI commands as subprocesses

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = PROJECT_ROOT / "deploy" / "entrypoint.sh"
HEALTHCHECK = PROJECT_ROOT / "deploy" / "healthcheck.py"
START_TIMEOUT_S = 180.0


def localized(command: list[str], port: int) -> list[str]:
    """The compose command with its listen address and port replaced for this machine."""
    replacements = {
        "0.0.0.0": "127.0.0.1",
        "8000": str(port),
        "--server.address=0.0.0.0": "--server.address=127.0.0.1",
        "--server.port=8501": f"--server.port={port}",
    }
    return [replacements.get(part, part) for part in command]


def container_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    venv_bin = Path(sys.executable).parent
    return {
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "HOME": str(tmp_path),  # the image's HOME is the tmpfs /tmp
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "2",
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        # Nothing listens on the discard port: the api must still start and be healthy.
        "PGPT_VLLM_URL": "http://127.0.0.1:9",
        "PGPT_EMBEDDING_DEVICE": "cpu",
        "PGPT_INDEX_DEVICE": "cpu",
        # The image builds its models (the ONNX embedder too) into PGPT_CACHE_DIR.
        "PGPT_CACHE_DIR": str(model_cache_dir()),
        **extra,
    }


def is_healthy(url: str) -> bool:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK), url], capture_output=True, timeout=30, check=False
    )
    return result.returncode == 0


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; their whole process groups are stopped afterwards."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def start(
    command: list[str], env: dict[str, str], cwd: Path, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT), *command],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    processes.append(process)
    return process


def wait_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"exited with {process.returncode} before {url} was healthy:\n{stderr}")
        if is_healthy(url):
            return
        time.sleep(1.0)
    pytest.fail(f"{url} not healthy within {START_TIMEOUT_S:.0f} s")


def test_api_command_passes_its_healthcheck(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    api = compose_config(tmp_path / "project")["services"]["api"]
    port = free_port()
    # The container's working directory holds no .env: an empty folder here.
    process = start(
        localized(api["command"], port),
        container_env(tmp_path, PGPT_BIND="127.0.0.1"),
        tmp_path,
        started,
    )
    wait_healthy(process, api["healthcheck"]["test"][3].replace(":8000/", f":{port}/"))


def test_ui_command_passes_its_healthcheck(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    ui = compose_config(tmp_path / "project")["services"]["ui"]
    port = free_port()
    health_url = ui["healthcheck"]["test"][3].replace(":8501/", f":{port}/")
    env = container_env(tmp_path, PGPT_BIND="127.0.0.1", PGPT_API_URL="http://127.0.0.1:9")
    # The image's WORKDIR /app holds app.py; the ui package is installed.
    process = start(localized(ui["command"], port), env, PROJECT_ROOT, started)
    wait_healthy(process, health_url)


@pytest.mark.parametrize("name", ["api", "ui"])
def test_exposed_without_key_never_listens(
    tmp_path: Path, started: list[subprocess.Popen[bytes]], name: str
) -> None:
    dotenv = {"PGPT_BIND": "0.0.0.0"}
    service = compose_config(tmp_path / "project", dotenv)["services"][name]
    port = free_port()
    env = container_env(tmp_path, PGPT_BIND="0.0.0.0")
    process = start(localized(service["command"], port), env, tmp_path, started)
    assert process.wait(timeout=60) == 78
    assert not is_healthy(f"http://127.0.0.1:{port}/")
