"""The real REST API on a loopback port, for the UI tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from core.settings import Settings, load_settings
from serving.api import create_app
from tests.serving.fakes import ScriptedGenerator
from tests.support import free_port


class ApiServer:
    """uvicorn serving the app in a background thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the API server thread died during start-up"
            assert time.monotonic() < deadline, "the API server did not start in 60 s"
            time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def session_exists(self, session_id: str) -> bool:
        response = httpx.get(f"{self.url}/v1/sessions/{session_id}/documents")
        return response.status_code == 200


def ui_settings(**overrides: Any) -> Settings:
    return load_settings(max_upload_mb=5, **overrides)


@pytest.fixture(scope="session")
def scripted_generator() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture(scope="session")
def api_server(embedder: Any, scripted_generator: ScriptedGenerator) -> Iterator[ApiServer]:
    """The API with the real embedder and FAISS, and a scripted generator."""
    app = create_app(ui_settings(), embedder=embedder, generator=scripted_generator)
    with ApiServer(app) as server:
        yield server
