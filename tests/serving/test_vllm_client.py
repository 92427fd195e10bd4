"""VLLMGenerator: fast checks of SSE parsing and retries against a scripted HTTP server,
then the real thing against the embedded vLLM CPU server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from core.errors import ConfigError, GeneratorUnavailableError
from core.settings import load_settings
from rag.generation import GeneratorStatus, Message
from serving import vllm_client
from serving.launcher import SERVED_MODEL_NAME, model_dir
from serving.vllm_client import StreamEvent, VLLMGenerator, make_generator, parse_sse_line

MODELS_BODY = {"object": "list", "data": [{"id": "tiny", "max_model_len": 2048}]}
QUESTION: list[Message] = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]


@pytest.fixture(autouse=True)
def _no_backoff_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_client, "BACKOFF_FIRST_S", 0.001)


def sse(*chunks: dict[str, Any] | str) -> bytes:
    lines = []
    for chunk in chunks:
        payload = chunk if isinstance(chunk, str) else json.dumps(chunk)
        lines.append(f"data: {payload}\n\n")
    return "".join(lines).encode()


def delta(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def scripted(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> VLLMGenerator:
    return VLLMGenerator(
        "http://llm.test", transport=httpx.MockTransport(handler), retries=2, **kwargs
    )


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


# --- SSE parsing ---------------------------------------------------------------


def test_parse_sse_line_reads_text_done_and_skips_the_rest() -> None:
    assert parse_sse_line('data: {"choices":[{"delta":{"content":"Hi"}}]}') == StreamEvent("Hi")
    assert parse_sse_line("data: [DONE]") == StreamEvent(done=True)
    assert parse_sse_line("") is None
    assert parse_sse_line(": keep-alive") is None
    assert parse_sse_line("event: message") is None
    assert parse_sse_line('data: {"choices":[]}') is None  # a usage-only chunk
    role_only = parse_sse_line('data: {"choices":[{"delta":{"role":"assistant"}}]}')
    assert role_only == StreamEvent("")


def test_parse_sse_line_reports_errors_without_echoing_input() -> None:
    event = parse_sse_line('data: {"error": {"message": "engine died", "type": "InternalError"}}')
    assert event is not None and event.error == "engine died"
    leaky = {"error": {"message": "bad [input_value='secret text']", "type": "BadRequest"}}
    event = parse_sse_line("data: " + json.dumps(leaky))
    assert event is not None and event.error == "BadRequest"
    broken = parse_sse_line("data: {not json")
    assert broken is not None and broken.error


# --- streaming -----------------------------------------------------------------


async def test_stream_yields_pieces_in_order_and_stops_at_done() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS_BODY)
        seen.append(json.loads(request.content))
        body = sse(delta("Red"), delta(", green"), delta(""), delta(", blue"), "[DONE]")
        return httpx.Response(200, content=body + sse(delta("after done")))

    generator = scripted(handler)
    pieces = await collect(generator.stream(QUESTION, max_tokens=16, temperature=0.0))
    assert pieces == ["Red", ", green", ", blue"]
    assert seen[0]["model"] == "tiny"
    assert seen[0]["stream"] is True
    assert seen[0]["max_tokens"] == 16
    assert seen[0]["messages"] == QUESTION
    await generator.aclose()


async def test_stream_without_done_marker_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS_BODY)
        return httpx.Response(200, content=sse(delta("Red")))

    generator = scripted(handler)
    with pytest.raises(GeneratorUnavailableError, match="ended the answer stream early"):
        await collect(generator.stream(QUESTION, max_tokens=16, temperature=0.0))


async def test_error_chunk_mid_stream_becomes_generator_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS_BODY)
        return httpx.Response(200, content=sse(delta("Red"), {"error": {"message": "boom"}}))

    generator = scripted(handler)
    with pytest.raises(GeneratorUnavailableError, match="boom"):
        await collect(generator.stream(QUESTION, max_tokens=16, temperature=0.0))


async def test_error_status_is_reported_with_the_servers_reason() -> None:
    too_long = "This model's maximum context length is 2048 tokens."

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS_BODY)
        return httpx.Response(400, json={"error": {"message": too_long, "type": "BadRequest"}})

    generator = scripted(handler)
    with pytest.raises(GeneratorUnavailableError, match=r"400.*maximum context length"):
        await collect(generator.stream(QUESTION, max_tokens=16, temperature=0.0))


# --- retries -------------------------------------------------------------------


async def test_connection_errors_before_the_first_token_are_retried() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS_BODY)
        attempts += 1
        if attempts <= 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=sse(delta("ok"), "[DONE]"))

    generator = scripted(handler)
    assert await collect(generator.stream(QUESTION, max_tokens=4, temperature=0.0)) == ["ok"]
    assert attempts == 3


async def test_gives_up_after_the_configured_retries() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused", request=request)

    generator = scripted(handler)
    with pytest.raises(GeneratorUnavailableError, match=r"Cannot reach .*pgpt vllm"):
        await generator.info()
    assert attempts == 3  # the first try and two retries


async def test_read_timeout_is_not_retried() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ReadTimeout("slow", request=request)

    generator = scripted(handler)
    with pytest.raises(GeneratorUnavailableError, match="did not answer in time"):
        await generator.count_tokens(QUESTION)
    assert attempts == 1


class CutAfterFirstChunk(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield sse(delta("Red"))
        raise httpx.ReadError("connection reset")


async def test_a_connection_lost_mid_answer_is_not_retried() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS_BODY)
        attempts += 1
        return httpx.Response(200, stream=CutAfterFirstChunk())

    generator = scripted(handler)
    pieces: list[str] = []
    with pytest.raises(GeneratorUnavailableError, match="mid-answer"):
        async for piece in generator.stream(QUESTION, max_tokens=16, temperature=0.0):
            pieces.append(piece)
    assert pieces == ["Red"]
    assert attempts == 1


# --- status, info, tokens ------------------------------------------------------


async def test_status_is_ready_when_the_server_serves_a_model() -> None:
    def healthy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=MODELS_BODY if request.url.path == "/v1/models" else {})

    assert await scripted(healthy).status() is GeneratorStatus.READY


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


async def test_an_unreachable_unsupervised_server_is_unavailable() -> None:
    assert await scripted(refused).status() is GeneratorStatus.UNAVAILABLE


async def test_a_supervised_server_is_starting_until_first_ready_then_restarting() -> None:
    up = True

    def flaky(request: httpx.Request) -> httpx.Response:
        if not up:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=MODELS_BODY if request.url.path == "/v1/models" else {})

    assert await scripted(refused, supervised=True).status() is GeneratorStatus.STARTING
    generator = scripted(flaky, supervised=True)
    assert await generator.status() is GeneratorStatus.READY
    up = False
    assert await generator.status() is GeneratorStatus.RESTARTING


async def test_info_is_asked_once_and_sends_the_api_key() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=MODELS_BODY)

    generator = scripted(handler, api_key="s3cret")
    first = await generator.info()
    assert first.model == "tiny" and first.context_length == 2048
    assert await generator.info() == first
    assert len(calls) == 1
    assert calls[0].headers["Authorization"] == "Bearer s3cret"


async def test_info_rejects_a_server_that_is_not_vllm() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "gpt"}]})

    with pytest.raises(GeneratorUnavailableError, match="max_model_len"):
        await scripted(handler).info()


async def test_count_tokens_posts_the_chat_to_tokenize() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/tokenize"
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"count": 42, "max_model_len": 2048, "tokens": []})

    assert await scripted(handler).count_tokens(QUESTION) == 42
    assert sent == [{"messages": QUESTION, "add_generation_prompt": True}]


async def test_make_generator_prefers_the_external_url() -> None:
    external = make_generator(load_settings(vllm_url="http://gpu-box:8000/"))
    embedded = make_generator(load_settings(vllm_url=None, vllm_host="127.0.0.1", vllm_port=8011))
    assert external.base_url == "http://gpu-box:8000"
    assert embedded.base_url == "http://127.0.0.1:8011"
    await external.aclose()
    await embedded.aclose()


@pytest.mark.parametrize(
    "written",
    [
        "http://gpu-box:8000",
        "http://gpu-box:8000/",
        "http://gpu-box:8000/v1",
        "http://gpu-box:8000/v1/",
    ],
)
def test_vllm_url_is_accepted_with_or_without_v1(written: str) -> None:
    assert load_settings(vllm_url=written).vllm_url == "http://gpu-box:8000"


def test_vllm_url_without_a_scheme_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"PGPT_VLLM_URL: .*http:// or https:// URL"):
        load_settings(vllm_url="gpu-box:8000")


# --- the real embedded vLLM server ---------------------------------------------


async def test_a_vllm_url_ending_in_v1_reaches_the_server(vllm_server: Any) -> None:
    """The usual way to write an OpenAI base URL must not end in 404 /v1/v1/models."""
    external = make_generator(load_settings(vllm_url=f"{vllm_server.url}/v1"))
    try:
        assert await external.status() is GeneratorStatus.READY
        assert (await external.info()).model == SERVED_MODEL_NAME
        assert await external.count_tokens(QUESTION) > 0
    finally:
        await external.aclose()


async def test_info_reports_the_served_model_and_context_length(
    generator: VLLMGenerator, settings: Any
) -> None:
    info = await generator.info()
    assert info.model == SERVED_MODEL_NAME
    assert info.context_length == settings.vllm_max_model_len
    assert await generator.status() is GeneratorStatus.READY


async def test_count_tokens_matches_the_models_chat_template(
    generator: VLLMGenerator, settings: Any
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir(settings))
    prompt = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    expected = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])

    assert await generator.count_tokens(QUESTION) == expected
    longer: list[Message] = [*QUESTION[:1], {"role": "user", "content": "word " * 100}]
    assert await generator.count_tokens(longer) > expected + 90


async def test_answer_streams_token_by_token(generator: VLLMGenerator) -> None:
    messages: list[Message] = [
        {"role": "user", "content": "Count from one to twenty in words, separated by commas."}
    ]
    pieces = await collect(generator.stream(messages, max_tokens=24, temperature=0.0))
    answer = "".join(pieces)
    assert len(pieces) >= 10, answer  # one SSE chunk per generated token, not one blob
    assert len(pieces) <= 24
    assert "one" in answer.lower() or "1" in answer


async def test_max_tokens_bounds_the_answer(generator: VLLMGenerator) -> None:
    pieces = await collect(generator.stream(QUESTION, max_tokens=3, temperature=0.0))
    assert 1 <= len(pieces) <= 3


async def test_abandoning_a_stream_leaves_the_server_usable(generator: VLLMGenerator) -> None:
    stream = generator.stream(QUESTION, max_tokens=64, temperature=0.0)
    first = await anext(stream)
    await stream.aclose()
    assert first
    assert await collect(generator.stream(QUESTION, max_tokens=4, temperature=0.0))
