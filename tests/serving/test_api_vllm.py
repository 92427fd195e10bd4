"""The REST API against the real embedded vLLM CPU server (started once per run)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.prompts import build_messages
from rag.retrieval import Hit
from serving.app import create_app
from tests.plugins.vllm_server import VLLMServerHandle
from tests.serving.test_api import parse_sse
from tests.support import GPU_QUESTION

TIME_QUESTION = "How long did training the big model take?"

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def client(embedder: Any, vllm_server: VLLMServerHandle) -> Iterator[TestClient]:
    # No quote is ever confident enough, so `auto` asks the real model every time.
    settings = load_settings(
        vllm_url=vllm_server.url, answer_max_tokens=96, temperature=0.0, quote_min_confidence=1.0
    )
    generator = vllm_server.make_generator(timeout_s=120, retries=1)
    with TestClient(create_app(settings, embedder=embedder, generator=generator)) as c:
        yield c


@pytest.fixture(scope="module")
def attention_session(client: TestClient, attention_pdf: bytes) -> str:
    sid: str = client.post("/v1/sessions").json()["session_id"]
    files = [("files", ("attention.pdf", attention_pdf, "application/pdf"))]
    assert client.post(f"/v1/sessions/{sid}/documents", files=files).status_code == 200
    return sid


def test_healthz_sees_the_real_model(client: TestClient) -> None:
    generator = client.get("/healthz").json()["generator"]
    assert generator["status"] == "ready"
    assert generator["model"] == "SmolLM2-135M-Instruct"


def test_query_round_trip_cites_the_right_page(client: TestClient, attention_session: str) -> None:
    response = client.post(
        f"/v1/sessions/{attention_session}/query", json={"question": TIME_QUESTION, "top_k": 3}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "SmolLM2-135M-Instruct"
    assert body["answer"]
    assert body["timings"]["ttft_ms"] > 0
    # Every citation points at a passage the model was given, with its file and page.
    # The tiny model often forgets [n] markers; then the verifier attributes each
    # supported sentence to the passage that backs it. Either way: a checked citation.
    assert body["grounded"] and body["citations"], body
    assert all(c == body["sources"][c["n"] - 1] for c in body["citations"])
    assert {7, 8} & {c["page"] for c in body["citations"]}  # training time: pages 7 and 8
    assert any(claim["support"] == "supported" for claim in body["claims"])
    cited = body["citations"][0]
    assert cited["highlight"] is not None
    assert "3.5 days" in cited["text"][cited["highlight"]["start"] : cited["highlight"]["end"]]


def test_streamed_answer_arrives_token_by_token(client: TestClient, attention_session: str) -> None:
    with client.stream(
        "POST",
        f"/v1/sessions/{attention_session}/query",
        json={"question": GPU_QUESTION, "top_k": 3, "stream": True},
    ) as response:
        assert response.status_code == 200
        events = parse_sse(response.iter_text())
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3
    name, final = events[-1]
    assert name == "done" and final["sources"]
    assert final["timings"]["total_ms"] >= final["timings"]["ttft_ms"]


def test_far_more_text_than_the_context_still_fits(
    client: TestClient, pdf_dir: Path, vllm_server: VLLMServerHandle
) -> None:
    sid = client.post("/v1/sessions").json()["session_id"]
    files = [
        ("files", (name, (pdf_dir / name).read_bytes(), "application/pdf"))
        for name in ("federal-register-2020-17221.pdf", "attention-is-all-you-need.pdf")
    ]
    documents = client.post(f"/v1/sessions/{sid}/documents", files=files).json()["documents"]
    assert sum(d["chunks"] for d in documents) > 100  # tens of thousands of tokens
    question = "What does the rule say about the effective date and the regulatory analysis?"
    # generate: the model's own answer, so every kept passage went into its prompt.
    body = {"question": question, "top_k": 20, "answer_mode": "generate"}
    response = client.post(f"/v1/sessions/{sid}/query", json=body)
    assert response.status_code == 200, response.text
    body = response.json()
    kept = len(body["sources"])
    assert 0 < kept < 20  # the lowest-ranked passages were dropped whole to fit
    hits = client.post(f"/v1/sessions/{sid}/search", json={"query": question, "top_k": 20})
    ranked = [r["text"] for r in hits.json()["results"]]
    assert [s["text"] for s in body["sources"]] == ranked[:kept]  # best first, none cut

    async def prompt_tokens() -> int:
        generator = vllm_server.make_generator()
        try:
            chunks = [_hit(s) for s in body["sources"]]
            return await generator.count_tokens(build_messages(question, chunks))
        finally:
            await generator.aclose()

    settings = load_settings()
    assert asyncio.run(prompt_tokens()) + 96 <= settings.vllm_max_model_len


def _hit(source: dict[str, Any]) -> Hit:
    from ingest.models import Chunk

    chunk = Chunk(
        source["document_id"],
        source["filename"],
        source["text"],
        source["page"],
        source["page_end"],
        source["char_start"],
        source["char_end"],
        source["section"],
    )
    return Hit(chunk, source["score"])
