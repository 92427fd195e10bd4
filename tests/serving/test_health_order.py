"""/healthz states the order `auto` follows for the served model (PGPT_AUTO_ORDER)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app


@pytest.mark.parametrize(
    ("model", "order", "stated"),
    [
        ("Qwen2.5-7B-Instruct", "auto", "model-first"),
        ("SmolLM2-135M-Instruct", "auto", "quotes-first"),
        ("Qwen2.5-7B-Instruct", "quotes-first", "quotes-first"),
    ],
)
def test_healthz_states_autos_order(
    fake_embedder: Any, model: str, order: str, stated: str
) -> None:
    settings = load_settings(auto_order=order)
    app = create_app(settings, embedder=fake_embedder, generator=ScriptedGenerator(model=model))
    with TestClient(app) as client:
        assert client.get("/healthz").json()["auto_order"] == stated
