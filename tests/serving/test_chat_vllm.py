"""Follow-ups and the OpenAI-compatible endpoint against the real embedded vLLM server,
through a real running API (uvicorn on a loopback port) and the official `openai` client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from core.settings import load_settings
from serving.app import create_app
from tests.plugins.vllm_server import VLLMServerHandle
from tests.support import FOLLOW_UP_QUESTION as FOLLOW_UP
from tests.support import GPU_ANSWER_PAGES, GPU_QUESTION
from tests.ui.conftest import ApiServer, serving

API_KEY = "conversation-test-key"
TIME_QUESTION = "How long did training the big model take?"

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def api(embedder: Any, vllm_server: VLLMServerHandle) -> Iterator[ApiServer]:
    settings = load_settings(
        vllm_url=vllm_server.url,
        answer_max_tokens=96,
        temperature=0.0,
        top_k=3,
        api_key=API_KEY,
        quote_min_confidence=1.0,  # no quote is confident enough: the real model answers
    )
    generator = vllm_server.make_generator(timeout_s=120, retries=1)
    with serving(create_app(settings, embedder=embedder, generator=generator)) as server:
        yield server


@pytest.fixture(scope="module")
def http(api: ApiServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def session_id(http: httpx.Client, attention_pdf: bytes) -> str:
    sid: str = http.post("/v1/sessions").json()["session_id"]
    files = [("files", ("attention.pdf", attention_pdf, "application/pdf"))]
    assert http.post(f"/v1/sessions/{sid}/documents", files=files).status_code == 200
    return sid


@pytest.fixture(scope="module")
def chat(api: ApiServer, session_id: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{api.url}/v1/sessions/{session_id}", api_key=API_KEY, timeout=300
    )


def pages(passages: list[dict[str, Any]]) -> set[int]:
    return {p["page"] for p in passages} | {p["page_end"] for p in passages}


def test_follow_up_retrieves_the_training_time_of_the_big_model(
    http: httpx.Client, session_id: str
) -> None:
    url = f"/v1/sessions/{session_id}/query"
    assert http.delete(f"/v1/sessions/{session_id}/conversation").status_code == 204
    first = http.post(url, json={"question": GPU_QUESTION})
    assert first.status_code == 200, first.text
    second = http.post(url, json={"question": FOLLOW_UP})
    assert second.status_code == 200, second.text
    body = second.json()
    assert GPU_ANSWER_PAGES & pages(body["sources"])
    standalone = body["standalone_question"].lower()
    assert "how long" in standalone and "training" in standalone  # training time
    assert "big model" in standalone


def test_openai_client_gets_a_completion_with_citations(chat: openai.OpenAI) -> None:
    completion = chat.chat.completions.create(
        model="privategptpp", messages=[{"role": "user", "content": TIME_QUESTION}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "SmolLM2-135M-Instruct"
    assert completion.choices[0].message.content
    extra = (completion.model_extra or {})["pgpt"]
    assert extra["answer"] == completion.choices[0].message.content
    assert extra["citations"] and GPU_ANSWER_PAGES & pages(extra["citations"])
    assert all(c in extra["sources"] for c in extra["citations"])
    assert extra["claims"]


def test_openai_client_streams_a_follow_up_from_messages(chat: openai.OpenAI) -> None:
    stream = chat.chat.completions.create(
        model="privategptpp",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": GPU_QUESTION},
            {"role": "assistant", "content": "The big model was trained on 8 P100 GPUs."},
            {"role": "user", "content": FOLLOW_UP},
        ],
        stream=True,
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and text.strip()
    assert chunks[-1].choices[0].finish_reason == "stop"
    extra = (chunks[-1].model_extra or {})["pgpt"]
    assert "big model" in extra["standalone_question"]  # the history came from `messages`
    assert GPU_ANSWER_PAGES & pages(extra["sources"])


def test_openai_client_lists_the_model_and_reads_an_unknown_session_as_404(
    api: ApiServer, chat: openai.OpenAI
) -> None:
    assert [m.id for m in chat.models.list()] == ["privategptpp"]
    lost = openai.OpenAI(base_url=f"{api.url}/v1/sessions/no-such-session", api_key=API_KEY)
    with pytest.raises(openai.NotFoundError) as caught:
        lost.chat.completions.create(
            model="privategptpp", messages=[{"role": "user", "content": GPU_QUESTION}]
        )
    assert caught.value.status_code == 404
    assert caught.value.code == "session_not_found"
    assert "does not exist or has expired" in caught.value.message
    wrong_key = openai.OpenAI(base_url=chat.base_url, api_key="wrong")
    with pytest.raises(openai.AuthenticationError):
        wrong_key.models.list()
