"""The real REST API on a loopback port, for the UI tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from core.settings import Settings, load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app
from tests.support import LOOPBACK, free_port


@dataclass(frozen=True)
class ApiServer:
    url: str

    def session_exists(self, session_id: str) -> bool:
        response = httpx.get(f"{self.url}/v1/sessions/{session_id}/documents")
        return response.status_code == 200


@contextmanager
def serving(app: FastAPI) -> Iterator[ApiServer]:
    """uvicorn serving the app in a background thread of the test process."""
    port = free_port()
    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "the API server thread died during start-up"
            assert time.monotonic() < deadline, "the API server did not start in 60 s"
            time.sleep(0.05)
        yield ApiServer(f"http://{LOOPBACK}:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def ui_settings(**overrides: Any) -> Settings:
    return load_settings(max_upload_mb=5, **overrides)


@pytest.fixture(scope="session")
def scripted_generator() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture(scope="session")
def api_server(fake_embedder: Any, scripted_generator: ScriptedGenerator) -> Iterator[ApiServer]:
    """The API with the fake embedder, real FAISS and a scripted generator: the page's logic."""
    app = create_app(ui_settings(), embedder=fake_embedder, generator=scripted_generator)
    with serving(app) as server:
        yield server


@pytest.fixture(scope="session")
def real_api_server(embedder: Any, scripted_generator: ScriptedGenerator) -> Iterator[ApiServer]:
    """The same with the real embedder, for a page that shows what the verifier backed."""
    app = create_app(ui_settings(), embedder=embedder, generator=scripted_generator)
    with serving(app) as server:
        yield server
