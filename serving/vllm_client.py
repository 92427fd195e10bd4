"""``rag.generation.Generator`` over vLLM's OpenAI-compatible HTTP API.

Everything that goes wrong between us and the server (refused connection, timeout,
error status, a stream cut short) surfaces as ``GeneratorUnavailableError``. Error
messages never quote prompt text: the prompt holds the user's documents.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from core.errors import GeneratorUnavailableError
from core.settings import Settings
from rag.generation import GeneratorInfo, GeneratorStatus, Message
from serving.affinity import SESSION_HEADER, session_affinity

T = TypeVar("T")

STATUS_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 5.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 4.0
MAX_ERROR_CHARS = 300
PREFILL_WINDOW_S = 60.0


# --- server-sent events ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One parsed ``data:`` line: a piece of text, the end marker, or an error."""

    text: str = ""
    done: bool = False
    error: str | None = None
    new_prompt_tokens: int | None = None  # prompt tokens not served from the prefix cache


def parse_sse_line(line: str) -> StreamEvent | None:
    """Parse one line of an OpenAI chat-completions stream; ``None`` for lines to skip."""
    line = line.strip()
    if not line.startswith("data:"):
        return None  # blank separators, ": keep-alive" comments, "event:" fields
    payload = line[len("data:") :].strip()
    if payload == "[DONE]":
        return StreamEvent(done=True)
    try:
        chunk = json.loads(payload)
    except json.JSONDecodeError:
        return StreamEvent(error="the server sent a malformed stream chunk")
    if not isinstance(chunk, dict):
        return StreamEvent(error="the server sent a malformed stream chunk")
    if "error" in chunk:
        return StreamEvent(error=_error_text(chunk["error"]))
    new_prompt_tokens = _new_prompt_tokens(chunk.get("usage"))
    choices = chunk.get("choices") or []
    if not choices:
        if new_prompt_tokens is None:
            return None
        return StreamEvent(new_prompt_tokens=new_prompt_tokens)  # a usage-only chunk
    delta = choices[0].get("delta") or {}
    return StreamEvent(text=delta.get("content") or "", new_prompt_tokens=new_prompt_tokens)


def _new_prompt_tokens(usage: object) -> int | None:
    """Prompt tokens the server had to compute: all of them less those its prefix cache held."""
    if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return int(usage["prompt_tokens"]) - (cached if isinstance(cached, int) else 0)


def _error_text(error: object) -> str:
    """vLLM's error message, unless it could echo the request (and so document text)."""
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        kind = str(error.get("type") or error.get("code") or "error")
    else:
        message, kind = str(error), "error"
    if not message or "input_value" in message or "input:" in message:
        return kind
    message = re.sub(r"\s+", " ", message)
    return message[:MAX_ERROR_CHARS]


# --- prefill rate -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrefillSample:
    at: float  # time.monotonic() of the first token
    tokens: int  # prompt tokens computed (not from the prefix cache)
    seconds: float  # time to first token


class PrefillMeter:
    """Prompt tokens per second of recent answers: tokens computed over time to first token.

    Answers with fewer than ``min_tokens`` new prompt tokens are left out: their time to
    first token is mostly fixed costs, not prefill.
    """

    def __init__(self, window_s: float = PREFILL_WINDOW_S, min_tokens: int = 256) -> None:
        self.window_s = window_s
        self.min_tokens = min_tokens
        self._samples: deque[PrefillSample] = deque()

    def record(self, tokens: int, seconds: float, now: float | None = None) -> None:
        if tokens >= self.min_tokens and seconds > 0:
            at = time.monotonic() if now is None else now
            self._samples.append(PrefillSample(at, tokens, seconds))

    def rate(self, now: float | None = None) -> float | None:
        """Tokens per second over the window's answers; None when there were none."""
        horizon = (time.monotonic() if now is None else now) - self.window_s
        while self._samples and self._samples[0].at < horizon:
            self._samples.popleft()
        seconds = sum(s.seconds for s in self._samples)
        return sum(s.tokens for s in self._samples) / seconds if seconds else None


# --- the client --------------------------------------------------------------


class VLLMGenerator:
    """An async client for one vLLM server; implements ``rag.generation.Generator``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        retries: int = 2,
        supervised: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self._supervised = supervised
        self._was_ready = False
        self._info: GeneratorInfo | None = None
        self.prefill = PrefillMeter()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            transport=transport,
            event_hooks={"request": [add_session_affinity]},
        )

    async def status(self) -> GeneratorStatus:
        """READY when it answers with a model. When a supervisor restarts the server
        (``supervised``), an unreachable one is STARTING until first ready, then RESTARTING."""
        try:
            health = await self._client.get("/health", timeout=STATUS_TIMEOUT_S)
            if health.status_code != 200:
                # vllm-router's /health fails while any replica is down; its /readiness
                # says whether one still serves (vLLM has no /readiness: 404).
                health = await self._client.get("/readiness", timeout=STATUS_TIMEOUT_S)
            if health.status_code == 200:
                models = await self._client.get("/v1/models", timeout=STATUS_TIMEOUT_S)
                if models.status_code == 200 and models.json().get("data"):
                    self._was_ready = True
                    return GeneratorStatus.READY
        except (httpx.HTTPError, ValueError):
            pass
        if self._supervised:
            return GeneratorStatus.RESTARTING if self._was_ready else GeneratorStatus.STARTING
        return GeneratorStatus.UNAVAILABLE

    async def info(self) -> GeneratorInfo:
        """The served model and its context length, asked once and then remembered."""
        if self._info is None:
            body = await self._with_retries(lambda: self._get_json("/v1/models"))
            models = body.get("data") or []
            if not models:
                raise GeneratorUnavailableError(
                    f"The LLM server at {self.base_url} serves no model."
                )
            first = models[0]
            if "max_model_len" not in first:
                raise GeneratorUnavailableError(
                    f"The LLM server at {self.base_url} does not report max_model_len; "
                    "PGPT_VLLM_URL must point at a vLLM OpenAI-compatible server."
                )
            self._info = GeneratorInfo(
                model=str(first["id"]), context_length=int(first["max_model_len"])
            )
        return self._info

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens after the chat template, as vLLM's own tokenizer counts them."""
        request = {"messages": list(messages), "add_generation_prompt": True}
        body = await self._with_retries(lambda: self._post_json("/tokenize", request))
        try:
            return int(body["count"])
        except (KeyError, TypeError, ValueError):
            raise GeneratorUnavailableError(
                f"The LLM server at {self.base_url} sent an unexpected /tokenize answer."
            ) from None

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        """Yield answer text as it arrives. Retries only before the first token."""
        info = await self.info()
        request: dict[str, Any] = {
            "model": info.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            # A closing chunk with the usage: prompt tokens, and those from the prefix cache.
            "stream_options": {"include_usage": True},
        }
        if stop:
            request["stop"] = list(stop)
        deadline = time.monotonic() + self.timeout_s
        attempt = 0
        while True:
            started = False
            sent = time.monotonic()
            first_token_s = 0.0
            try:
                async with self._client.stream(
                    "POST", "/v1/chat/completions", json=request
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise GeneratorUnavailableError(self._status_message(response))
                    async for line in response.aiter_lines():
                        if time.monotonic() > deadline:
                            raise GeneratorUnavailableError(
                                f"The LLM server at {self.base_url} took longer than "
                                f"{self.timeout_s:.0f} s to answer (PGPT_GENERATOR_TIMEOUT_S)."
                            )
                        event = parse_sse_line(line)
                        if event is None:
                            continue
                        if event.error is not None:
                            raise GeneratorUnavailableError(
                                f"The LLM server at {self.base_url} failed mid-answer: "
                                f"{event.error}"
                            )
                        if event.done:
                            return
                        if event.new_prompt_tokens is not None and started:
                            self.prefill.record(event.new_prompt_tokens, first_token_s)
                        if event.text:
                            if not started:
                                first_token_s = time.monotonic() - sent
                            started = True
                            yield event.text
                raise GeneratorUnavailableError(
                    f"The LLM server at {self.base_url} ended the answer stream early."
                )
            except httpx.TransportError as exc:
                if started:
                    raise GeneratorUnavailableError(
                        f"Lost the connection to the LLM server at {self.base_url} "
                        f"mid-answer ({type(exc).__name__})."
                    ) from None
                if attempt >= self.retries or not _is_retryable(exc):
                    raise self._unreachable(exc) from None
                await asyncio.sleep(_backoff_s(attempt))
                attempt += 1

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- plumbing --------------------------------------------------------

    async def _get_json(self, path: str) -> dict[str, Any]:
        return self._json_body(await self._client.get(path))

    async def _post_json(self, path: str, request: dict[str, Any]) -> dict[str, Any]:
        return self._json_body(await self._client.post(path, json=request))

    def _json_body(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise GeneratorUnavailableError(self._status_message(response))
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GeneratorUnavailableError(
                f"The LLM server at {self.base_url} sent a non-JSON answer to "
                f"{response.request.url.path}."
            )
        return body

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except httpx.TransportError as exc:
                if attempt >= self.retries or not _is_retryable(exc):
                    raise self._unreachable(exc) from None
                await asyncio.sleep(_backoff_s(attempt))
                attempt += 1

    def _unreachable(self, exc: httpx.TransportError) -> GeneratorUnavailableError:
        if isinstance(exc, httpx.TimeoutException):
            return GeneratorUnavailableError(
                f"The LLM server at {self.base_url} did not answer in time "
                f"({type(exc).__name__}, limit {self.timeout_s:.0f} s)."
            )
        return GeneratorUnavailableError(
            f"Cannot reach the LLM server at {self.base_url} ({type(exc).__name__}). "
            "Is it running? Start it with `pgpt vllm`, or check PGPT_VLLM_URL."
        )

    def _status_message(self, response: httpx.Response) -> str:
        try:
            detail = _error_text(response.json().get("error") or response.json())
        except (ValueError, AttributeError):
            detail = response.reason_phrase
        return (
            f"The LLM server at {self.base_url} answered {response.status_code} "
            f"to {response.request.url.path}: {detail}"
        )


async def add_session_affinity(request: httpx.Request) -> None:
    """A call made for a session names it by its keyed hash, for vllm-router (never the id)."""
    key = session_affinity.get()
    if key is not None:
        request.headers[SESSION_HEADER] = key


def _is_retryable(exc: httpx.TransportError) -> bool:
    # A read timeout means the server is busy with our request: sending it again only piles up.
    return not isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)


def _backoff_s(attempt: int) -> float:
    return float(min(BACKOFF_FIRST_S * 2**attempt, BACKOFF_MAX_S))


def embedded_url(settings: Settings) -> str:
    return f"http://{settings.vllm_host}:{settings.vllm_port}"


def make_generator(settings: Settings) -> VLLMGenerator:
    """A client for PGPT_VLLM_URL when set, else for the embedded server's address."""
    api_key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None
    return VLLMGenerator(
        settings.vllm_url or embedded_url(settings),
        api_key=api_key,
        timeout_s=settings.generator_timeout_s,
        retries=settings.generator_retries,
        supervised=settings.vllm_supervised,
    )
