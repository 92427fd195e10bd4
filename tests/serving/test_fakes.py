"""serving.fakes.FakeVLLMServer answers our own vLLM client as vLLM does, and counts chat
requests per session hash on /metrics as the scale tests read them."""

from __future__ import annotations

import httpx
import pytest

from core.errors import GeneratorUnavailableError
from rag.generation import GeneratorStatus, Message
from serving.fakes import FakeVLLMServer, parse_metrics
from serving.vllm_client import VLLMGenerator

QUESTION: list[Message] = [{"role": "user", "content": "How many GPUs?"}]


async def answer(client: VLLMGenerator) -> list[str]:
    return [piece async for piece in client.stream(QUESTION, max_tokens=8, temperature=0.0)]


async def test_the_client_streams_the_scripted_reply_and_reads_the_model() -> None:
    with FakeVLLMServer(["Eight GPUs [1]."], model="tiny", context_length=2048) as server:
        client = VLLMGenerator(server.url, retries=0)
        try:
            assert await client.status() == GeneratorStatus.READY
            info = await client.info()
            assert (info.model, info.context_length) == ("tiny", 2048)
            assert await client.count_tokens(QUESTION) == len("How many GPUs?") // 4
            assert await answer(client) == ["Eight", " GPUs", " [1]."]
        finally:
            await client.aclose()
    assert [r["path"] for r in server.requests] == ["/tokenize", "/v1/chat/completions"]


async def test_a_stream_cut_mid_answer_is_an_unavailable_generator() -> None:
    with FakeVLLMServer("one two three") as server:
        server.generator.fail_after_words = 1
        client = VLLMGenerator(server.url, retries=0)
        try:
            with pytest.raises(GeneratorUnavailableError, match="ended the answer stream early"):
                await answer(client)
        finally:
            await client.aclose()


def test_a_loading_server_answers_503_and_a_non_streamed_completion_is_json() -> None:
    with FakeVLLMServer("Done.") as server:
        body = {"messages": QUESTION, "stream": False}
        reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=5).json()
        assert reply["choices"][0]["message"]["content"] == "Done."
        server.generator.available = False
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 503


def test_chat_requests_are_counted_per_session_hash_on_metrics() -> None:
    body = {"messages": QUESTION, "stream": False}
    with FakeVLLMServer("Answered by replica a.") as server:
        for session in ("h1", "h2", "h1"):
            headers = {"X-Session-ID": session}
            httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=5)
        httpx.post(f"{server.url}/tokenize", json=body, headers={"X-Session-ID": "h3"}, timeout=5)
        metrics = httpx.get(f"{server.url}/metrics", timeout=5)
    assert metrics.headers["content-type"] == "text/plain"
    assert parse_metrics(metrics.text) == {"h1": 2, "h2": 1}
