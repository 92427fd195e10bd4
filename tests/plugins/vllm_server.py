"""The real embedded vLLM CPU server, started once per pytest run.

Fixtures:
  ``vllm_server`` (session): a ``VLLMServerHandle`` with ``.url``, ``.stop()``, ``.start()``.
      Every test that uses it (directly or through another fixture) is marked ``vllm``
      and finds it running: a test that stopped it gets it back for the next test.
  ``generator`` (function): a ``VLLMGenerator`` on that server, closed after the test.

vLLM's own output goes to ``handle.log_path`` (request logging is off, so it never
holds prompt text; privacy tests may read it to check exactly that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from serving.launcher import EmbeddedVLLM, prepare_model
from serving.vllm_client import VLLMGenerator
from tests.support import LOOPBACK, free_port


class VLLMServerHandle:
    """One embedded server for the whole run; restartable on the same URL."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("a", encoding="utf-8")
        self._server = EmbeddedVLLM(
            settings,
            host=LOOPBACK,
            port=free_port(),
            model_path=prepare_model(settings),
            output=self._log,
        )

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def pid(self) -> int | None:
        return self._server.pid

    def is_running(self) -> bool:
        return self._server.is_running()

    def start(self) -> None:
        """Start (or restart) and wait until healthy; a no-op while it runs."""
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    ensure_running = start

    def make_generator(self, *, timeout_s: float = 60.0, retries: int = 1) -> VLLMGenerator:
        return VLLMGenerator(self.url, timeout_s=timeout_s, retries=retries)

    def close(self) -> None:
        self._server.stop()
        self._log.close()


@pytest.fixture(scope="session")
def vllm_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VLLMServerHandle]:
    handle = VLLMServerHandle(settings, tmp_path_factory.mktemp("vllm") / "vllm.log")
    try:
        handle.start()
        yield handle
    finally:
        handle.close()


@pytest.fixture(autouse=True)
def _vllm_server_running(request: pytest.FixtureRequest) -> None:
    """Give each vLLM test a running server, even if the previous test stopped it."""
    if "vllm_server" in request.fixturenames:
        handle: VLLMServerHandle = request.getfixturevalue("vllm_server")
        handle.ensure_running()


@pytest.fixture
async def generator(vllm_server: VLLMServerHandle) -> AsyncIterator[VLLMGenerator]:
    client = vllm_server.make_generator()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.hookimpl(tryfirst=True)  # before `-m "not vllm"` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "vllm_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.vllm)
