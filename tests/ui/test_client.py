"""The UI's API client against scripted HTTP answers: it returns the API's own models."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from core.api_models import (
    ClaimOut,
    ClientConfig,
    DocumentOut,
    EmbedderHealth,
    ErrorDetail,
    GeneratorHealth,
    Health,
    NumberedPassage,
    QueryRequest,
    QueryResult,
    SessionCreated,
    TimingsOut,
    TokenChunk,
    UnavailableBody,
)
from core.settings import AnswerMode
from tests.conftest import PROJECT_ROOT
from ui.client import (
    ApiClient,
    ApiError,
    SessionExpiredError,
    UploadOutcome,
    parse_sse,
)

FOUND = NumberedPassage(
    n=1,
    document_id="d1",
    filename="attention.pdf",
    page=7,
    page_end=7,
    section=None,
    char_start=0,
    char_end=11,
    text="Eight GPUs.",
    score=0.71,
)
QUESTION = QueryRequest(question="How many?", top_k=3, max_tokens=96, temperature=0.2)
RESULT = QueryResult(
    answer="Eight [1].",
    citations=[FOUND],
    sources=[FOUND],
    invalid_citations=[],
    claims=[ClaimOut(text="Eight [1].", citations=[1], support="supported", score=0.9)],
    grounded=True,
    timings=TimingsOut(retrieval_ms=5.0, ttft_ms=20.0, total_ms=90.0),
    model="scripted",
)


def test_parse_sse_reads_events_comments_and_multiline_data() -> None:
    lines = [
        ": keep-alive",
        "event: token",
        'data: {"text": "Hel"}',
        "",
        "event: token",
        'data: {"text": "lo"}',
        "",
        "data: line one",
        "data: line two",
        "",
        "event: done",
        'data: {"answer": "Hello"}',
    ]
    assert list(parse_sse(lines)) == [
        ("token", '{"text": "Hel"}'),
        ("token", '{"text": "lo"}'),
        ("message", "line one\nline two"),
        ("done", '{"answer": "Hello"}'),
    ]


def test_ask_sends_the_request_streamed_with_the_key_and_reads_the_stream_into_models() -> None:
    seen: list[httpx.Request] = []
    body = (
        'event: token\ndata: {"text": "Eight"}\n\n'
        'event: token\ndata: {"text": " [1]."}\n\n'
        f"event: done\ndata: {RESULT.model_dump_json()}\n\n"
    )

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = ApiClient("http://api", "k3y", transport=httpx.MockTransport(handle))
    events = list(client.ask("s1", QUESTION))

    assert events == [TokenChunk(text="Eight"), TokenChunk(text=" [1]."), RESULT]
    [request] = seen
    assert request.url.path == "/v1/sessions/s1/query"
    assert request.headers["authorization"] == "Bearer k3y"
    assert json.loads(request.content) == {
        "question": "How many?",
        "top_k": 3,
        "stream": True,
        "max_tokens": 96,
        "temperature": 0.2,
        "use_conversation": True,
    }


def test_ask_turns_a_503_into_the_passages_found() -> None:
    error = {"code": "generator_unavailable", "message": "The model is down."}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": error, "sources": [FOUND.model_dump()]})

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    [event] = client.ask("s1", QUESTION)
    assert event == UnavailableBody(
        error=ErrorDetail(code="generator_unavailable", message="The model is down."),
        sources=[FOUND],
    )


def test_an_error_event_mid_stream_becomes_failed() -> None:
    error = {"error": {"code": "generator_unavailable", "message": "Gone."}}
    body = f"event: error\ndata: {json.dumps(error)}\n\n"

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    events = list(client.ask("s1", QUESTION))
    assert events == [
        UnavailableBody(
            error=ErrorDetail(code="generator_unavailable", message="Gone."), sources=[]
        )
    ]


def test_health_config_session_and_documents_are_api_models() -> None:
    health = Health(
        status="ok",
        generator=GeneratorHealth(status="ready", model="scripted", context_length=4096),
        embedder=EmbedderHealth(model="all-MiniLM-L6-v2", device="cpu", dtype="bfloat16"),
        sessions=0,
    )
    config = ClientConfig(
        max_upload_mb=5,
        session_ttl_s=600,
        accepted_extensions=[".pdf", ".md"],
        accepted_types="PDF (.pdf) or Markdown (.md)",
        top_k=4,
        max_tokens=384,
        temperature=0.1,
        answer_mode=AnswerMode.AUTO,
    )
    created = SessionCreated(session_id="s1", expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    document = DocumentOut(
        document_id="d1", filename="a.pdf", pages=2, chunks=3, size_bytes=900, memory_bytes=1000
    )
    routes = {
        ("GET", "/healthz"): health.model_dump(mode="json"),
        ("GET", "/v1/config"): config.model_dump(mode="json"),
        ("POST", "/v1/sessions"): created.model_dump(mode="json"),
        ("GET", "/v1/sessions/s1/documents"): {"documents": [document.model_dump()]},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=routes[(request.method, request.url.path)])

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    assert client.health() == health
    assert client.config() == config
    assert client.create_session() == created
    assert client.documents("s1") == [document]


def test_upload_reports_the_document_or_the_file_error() -> None:
    document = DocumentOut(
        document_id="d1", filename="a.pdf", pages=2, chunks=3, size_bytes=900, memory_bytes=1000
    )
    bodies = {
        "a.pdf": (200, {"documents": [document.model_dump()], "errors": []}),
        "x.pdf": (
            422,
            {
                "error": {"code": "corrupt_document", "message": "'x.pdf' is damaged."},
                "documents": [],
                "errors": [{"filename": "x.pdf", "code": "corrupt_document", "message": "damaged"}],
            },
        ),
    }

    def handle(request: httpx.Request) -> httpx.Response:
        name = "a.pdf" if b'filename="a.pdf"' in request.content else "x.pdf"
        status, body = bodies[name]
        return httpx.Response(status, json=body)

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    assert client.upload("s1", "a.pdf", b"%PDF") == UploadOutcome("a.pdf", document=document)
    assert client.upload("s1", "x.pdf", b"junk") == UploadOutcome(
        "x.pdf", error="'x.pdf' is damaged.", code="corrupt_document"
    )


def test_an_unknown_session_and_a_body_without_error_are_told_apart() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/documents"):
            error = {"code": "session_not_found", "message": "No such session."}
            return httpx.Response(404, json={"error": error})
        return httpx.Response(502, text="<html>Bad gateway</html>")

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    with pytest.raises(SessionExpiredError) as expired:
        client.documents("gone")
    assert (expired.value.code, expired.value.message) == ("session_not_found", "No such session.")
    with pytest.raises(ApiError) as failed:
        client.delete_session("s1")
    assert type(failed.value) is ApiError
    assert (failed.value.code, failed.value.message) == ("http_error", "The API answered 502.")


def test_the_ui_modules_import_without_fastapi_torch_or_vllm() -> None:
    probe = (
        "import sys, ui.client, ui.render, ui.limits, core.api_models, rag.citations; "
        "print(sorted(m for m in ('fastapi', 'torch', 'vllm', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_streamed_upload_reports_ocr_progress_then_the_document() -> None:
    document = DocumentOut(
        document_id="d1",
        filename="scan.pdf",
        pages=2,
        chunks=3,
        ocr_pages=[1, 2],
        size_bytes=2048,
        memory_bytes=4096,
    )
    progress = [
        {"filename": "scan.pdf", "file_index": 0, "files": 1, "pages_done": done, "pages_total": 2}
        for done in range(3)
    ]
    events = [("progress", p) for p in progress] + [
        ("document", document.model_dump()),
        ("done", {"documents": [document.model_dump()], "errors": []}),
    ]
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.params["stream"] == "true"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    seen: list[tuple[int, int]] = []
    outcome = client.upload_with_progress(
        "s1",
        "scan.pdf",
        b"%PDF",
        lambda update: seen.append((update.pages_done, update.pages_total)),
    )
    assert outcome == UploadOutcome("scan.pdf", document=document)
    assert seen == [(0, 2), (1, 2), (2, 2)]
