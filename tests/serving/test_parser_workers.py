"""PGPT_PARSER_WORKERS sizes the API's parser pool, which the app starts and stops."""

from __future__ import annotations

import psutil
import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.fakes import HashingEmbedder, ScriptedGenerator
from serving.app import create_app


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid)]


@pytest.mark.parametrize("workers", [1, 3])
def test_parser_workers_setting_sizes_the_api_pool(
    workers: int, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 and 3: neither is the default on a 2-core machine (one worker per core).
    monkeypatch.setenv("PGPT_PARSER_WORKERS", str(workers))
    app = create_app(load_settings(), embedder=fake_embedder, generator=ScriptedGenerator())
    with TestClient(app):
        pids = app.state.services.parser_pool.worker_pids  # started at start-up
        assert len(alive(pids)) == workers
    assert psutil.wait_procs([psutil.Process(pid) for pid in alive(pids)], timeout=10)[1] == []
