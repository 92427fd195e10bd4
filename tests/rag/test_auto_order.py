"""PGPT_AUTO_ORDER: which `auto` tries first, quotes or the model's verified sentences."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from core.settings import AutoOrder
from rag.answer_modes import model_first, resolved_order
from rag.fakes import ScriptedGenerator


@pytest.mark.parametrize(
    ("order", "model", "expected"),
    [
        ("auto", "SmolLM2-135M-Instruct", "quotes-first"),  # the embedded model
        ("auto", "Qwen2.5-7B-Instruct", "model-first"),
        ("auto", None, "quotes-first"),  # the model is down: quotes need none
        ("quotes-first", "Qwen2.5-7B-Instruct", "quotes-first"),
        ("model-first", "SmolLM2-135M-Instruct", "model-first"),
    ],
)
def test_the_order_follows_the_served_model_unless_set(
    order: AutoOrder, model: str | None, expected: str
) -> None:
    assert resolved_order(order, model) == expected


def engine_serving(generator: ScriptedGenerator) -> Any:
    return SimpleNamespace(generator=generator)  # model_first reads only the generator


def test_auto_asks_a_capable_model_first() -> None:
    engine = engine_serving(ScriptedGenerator(model="Qwen2.5-7B-Instruct"))
    assert asyncio.run(model_first(engine, "auto")) is True


def test_auto_quotes_first_when_the_model_is_unreachable() -> None:
    generator = ScriptedGenerator(model="Qwen2.5-7B-Instruct")
    generator.available = False
    assert asyncio.run(model_first(engine_serving(generator), "auto")) is False
