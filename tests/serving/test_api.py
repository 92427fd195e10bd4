"""Every route of the REST API, with the fake embedder (rag.fakes), FAISS and PDF parsing.

The generator here is scripted so that route behaviour is fast to check; the real
vLLM round trip lives in test_api_vllm.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.fakes import DEFAULT_REPLY, ScriptedGenerator
from serving.app import create_app
from serving.fakes import FakeVLLMServer
from serving.vllm_client import VLLMGenerator
from tests.support import FOLLOW_UP_QUESTION as FOLLOW_UP
from tests.support import GPU_ANSWER_PAGES, GPU_QUESTION


@pytest.fixture(scope="module")
def generator() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture(scope="module")
def client(fake_embedder: Any, generator: ScriptedGenerator) -> Iterator[TestClient]:
    # No quote is ever confident enough, so `auto` asks the (scripted) model every time:
    # these tests are about generation through the API.
    settings = load_settings(max_upload_mb=5, quote_min_confidence=1.0)
    with TestClient(create_app(settings, embedder=fake_embedder, generator=generator)) as c:
        yield c


@pytest.fixture()
def session_id(client: TestClient) -> str:
    response = client.post("/v1/sessions")
    assert response.status_code == 201
    sid: str = response.json()["session_id"]
    return sid


@pytest.fixture(scope="module")
def loaded_session(client: TestClient, attention_pdf: bytes) -> str:
    sid: str = client.post("/v1/sessions").json()["session_id"]
    response = client.post(
        f"/v1/sessions/{sid}/documents",
        files=[("files", ("attention.pdf", attention_pdf, "application/pdf"))],
    )
    assert response.status_code == 200, response.text
    return sid


def test_healthz_reports_generator_and_embedder(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["generator"]["status"] == "ready"
    # The embedder the app was given (the default backend is tests/rag/test_onnx_embedding.py's).
    assert body["embedder"] == {"model": "hashing-fake", "device": "cpu", "dtype": "float32"}


def test_session_lifecycle(client: TestClient) -> None:
    created = client.post("/v1/sessions")
    assert created.status_code == 201
    sid = created.json()["session_id"]
    assert created.headers["location"] == f"/v1/sessions/{sid}"
    assert created.json()["expires_at"].endswith(("Z", "+00:00"))
    assert client.get(f"/v1/sessions/{sid}/documents").json() == {"documents": []}
    assert client.delete(f"/v1/sessions/{sid}").status_code == 204
    gone = client.get(f"/v1/sessions/{sid}/documents")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "session_not_found"


def test_upload_reports_bad_files_and_keeps_good_ones(
    client: TestClient, session_id: str, pdf_dir: Path
) -> None:
    files = [
        ("files", ("crazyones.pdf", (pdf_dir / "crazyones.pdf").read_bytes(), "application/pdf")),
        ("files", ("empty.pdf", b"", "application/pdf")),
        ("files", ("notes.md", b"# Title\n\nThe crazy ones, again.", "text/markdown")),
        ("files", ("image.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")),
    ]
    body = client.post(f"/v1/sessions/{session_id}/documents", files=files).json()
    assert [d["filename"] for d in body["documents"]] == ["crazyones.pdf", "notes.md"]
    assert {e["filename"]: e["code"] for e in body["errors"]} == {
        "empty.pdf": "empty_document",
        "image.png": "corrupt_document",
    }
    assert all("empty.pdf" in e["message"] or "image.png" in e["message"] for e in body["errors"])
    listed = client.get(f"/v1/sessions/{session_id}/documents").json()["documents"]
    assert len(listed) == 2


def test_upload_where_every_file_fails_is_an_error(client: TestClient, session_id: str) -> None:
    response = client.post(
        f"/v1/sessions/{session_id}/documents",
        files=[("files", ("a.pdf", b"%PDF-1.7\n1 0 obj <<", "application/pdf"))],
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == body["errors"][0]["code"]
    assert "a.pdf" in body["error"]["message"] and body["documents"] == []


def test_password_field_opens_encrypted_pdf(
    client: TestClient, session_id: str, pdf_dir: Path
) -> None:
    data = (pdf_dir / "encrypted-password-openpassword.pdf").read_bytes()
    url = f"/v1/sessions/{session_id}/documents"
    refused = client.post(url, files=[("files", ("secret.pdf", data, "application/pdf"))])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "password_required"
    opened = client.post(
        url,
        files=[("files", ("secret.pdf", data, "application/pdf"))],
        data={"password": "openpassword"},
    ).json()
    assert opened["errors"] == [] and opened["documents"][0]["pages"] >= 1


def test_search_finds_the_right_page(client: TestClient, loaded_session: str) -> None:
    response = client.post(
        f"/v1/sessions/{loaded_session}/search", json={"query": GPU_QUESTION, "top_k": 5}
    )
    results = response.json()["results"]
    assert len(results) == 5
    assert GPU_ANSWER_PAGES & {r["page"] for r in results}
    # Best first by fused rank (hybrid is the default); the score shown is the cosine.
    assert all(-1.0 <= r["score"] <= 1.0 for r in results)
    assert set(results[0]) >= {"document_id", "filename", "page", "text", "score"}


def test_delete_document_removes_it_from_results(
    client: TestClient, session_id: str, pdf_dir: Path
) -> None:
    url = f"/v1/sessions/{session_id}/documents"
    crazy = (pdf_dir / "crazyones.pdf").read_bytes()
    notes = b"The big model was trained on eight P100 GPUs for three and a half days."
    docs = client.post(
        url,
        files=[
            ("files", ("notes.txt", notes, "text/plain")),
            ("files", ("crazyones.pdf", crazy, "application/pdf")),
        ],
    ).json()["documents"]
    notes_id = docs[0]["document_id"]
    assert client.delete(f"{url}/{notes_id}").status_code == 204
    results = client.post(
        f"/v1/sessions/{session_id}/search", json={"query": GPU_QUESTION, "top_k": 10}
    ).json()["results"]
    assert {r["filename"] for r in results} == {"crazyones.pdf"}
    assert client.delete(f"{url}/{notes_id}").status_code == 404


def test_query_returns_answer_citations_sources_and_timings(
    client: TestClient, loaded_session: str
) -> None:
    body = client.post(
        f"/v1/sessions/{loaded_session}/query", json={"question": GPU_QUESTION}
    ).json()
    assert body["answer"].startswith("The big model")
    assert body["model"] == "scripted"
    assert [c["n"] for c in body["citations"]] == [1]
    assert body["citations"][0] == body["sources"][0]
    assert len(body["sources"]) == 5
    assert set(body["timings"]) == {"retrieval_ms", "ttft_ms", "total_ms"}


def test_query_streams_tokens_then_a_final_event(client: TestClient, loaded_session: str) -> None:
    with client.stream(
        "POST",
        f"/v1/sessions/{loaded_session}/query",
        json={"question": GPU_QUESTION, "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.iter_text())
    names = [name for name, _ in events]
    assert names[-1] == "done" and names.count("token") > 3
    assert "".join(d["text"] for n, d in events if n == "token").strip() == events[-1][1]["answer"]
    assert events[-1][1]["citations"][0]["n"] == 1


def test_follow_up_is_rewritten_with_the_conversation_and_recorded(
    client: TestClient, attention_pdf: bytes, generator: ScriptedGenerator
) -> None:
    sid = client.post("/v1/sessions").json()["session_id"]
    files = [("files", ("attention.pdf", attention_pdf, "application/pdf"))]
    assert client.post(f"/v1/sessions/{sid}/documents", files=files).status_code == 200
    url = f"/v1/sessions/{sid}/query"
    first = client.post(url, json={"question": GPU_QUESTION}).json()
    assert first["standalone_question"] == GPU_QUESTION
    second = client.post(url, json={"question": FOLLOW_UP}).json()
    # The scripted model answers instead of rewriting, so the keyword carry-over is used.
    assert second["standalone_question"] == f"{FOLLOW_UP} (P100 GPUs, train, big model)"
    assert {7, 8} & {s["page"] for s in second["sources"]}
    # The answer prompt carried the first turn, citation markers removed.
    assert {"role": "user", "content": GPU_QUESTION} in generator.last_messages
    assert {
        "role": "assistant",
        "content": "The big model was trained on 8 P100 GPUs.",
    } in generator.last_messages
    alone = client.post(url, json={"question": FOLLOW_UP, "use_conversation": False}).json()
    assert alone["standalone_question"] == FOLLOW_UP
    assert client.delete(f"/v1/sessions/{sid}/conversation").status_code == 204
    fresh = client.post(url, json={"question": FOLLOW_UP}).json()
    assert fresh["standalone_question"] == FOLLOW_UP
    assert client.get(f"/v1/sessions/{sid}/documents").json()["documents"]  # documents stay


def test_chat_completion_is_openai_shaped_with_the_result_alongside(
    client: TestClient, loaded_session: str
) -> None:
    body = {"model": "privategptpp", "messages": [{"role": "user", "content": GPU_QUESTION}]}
    response = client.post(f"/v1/sessions/{loaded_session}/chat/completions", json=body)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": completion["pgpt"]["answer"]},
            "finish_reason": "stop",
        }
    ]
    assert completion["pgpt"]["citations"][0]["n"] == 1


def test_an_unbacked_draft_gives_the_evidence_kind_on_query_and_chat(
    client: TestClient, loaded_session: str, generator: ScriptedGenerator
) -> None:
    draft = "The crazy ones were trained on the moon [1]."
    generator.answer = draft
    try:
        query = client.post(
            f"/v1/sessions/{loaded_session}/query", json={"question": GPU_QUESTION}
        ).json()
        asked = {"messages": [{"role": "user", "content": GPU_QUESTION}]}
        chat = client.post(f"/v1/sessions/{loaded_session}/chat/completions", json=asked).json()
    finally:
        generator.answer = DEFAULT_REPLY
    for result in (query, chat["pgpt"]):
        assert (result["answer_kind"], result["grounded"]) == ("evidence", False)
        assert result["answer"].startswith("Not checked as an answer")
        assert result["citations"] and result["citations"][0]["highlight"] is not None
        assert [(c["text"], c["shown"]) for c in result["claims"]] == [(draft, False)]
    assert chat["choices"][0]["message"]["content"] == chat["pgpt"]["answer"]


def test_chat_history_comes_from_messages_not_the_session(
    client: TestClient, loaded_session: str
) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": GPU_QUESTION}]},
        {"role": "assistant", "content": "Eight [1]."},
        {"role": "user", "content": FOLLOW_UP},
    ]
    with client.stream(
        "POST",
        f"/v1/sessions/{loaded_session}/chat/completions",
        json={"messages": messages, "stream": True, "stream_options": {"include_usage": True}},
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("pgpt" not in c for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert last["pgpt"]["standalone_question"] == f"{FOLLOW_UP} (P100 GPUs, train, big model)"


def test_chat_needs_a_user_question_last(client: TestClient, loaded_session: str) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    response = client.post(
        f"/v1/sessions/{loaded_session}/chat/completions", json={"messages": messages}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "last message must be the user's question" in response.json()["error"]["message"]


def test_models_lists_the_one_grounded_model(client: TestClient, loaded_session: str) -> None:
    body = client.get(f"/v1/sessions/{loaded_session}/models").json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"]) for m in body["data"]] == [("privategptpp", "model")]


def test_generator_down_gives_503_with_passages(
    client: TestClient, loaded_session: str, generator: ScriptedGenerator
) -> None:
    generator.available = False
    try:
        response = client.post(
            f"/v1/sessions/{loaded_session}/query", json={"question": GPU_QUESTION}
        )
        assert client.get("/healthz").json()["generator"]["status"] == "unavailable"
    finally:
        generator.available = True
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "generator_unavailable"
    assert len(response.json()["sources"]) == 5


def test_an_llm_server_that_stops_gives_503_with_passages_then_recovers(
    fake_embedder: Any, attention_pdf: bytes
) -> None:
    """Our vLLM client against a fake vLLM that stops and comes back on its port (the real
    server's stop and restart are test_launcher.py's: one vLLM restart, not two)."""
    server = FakeVLLMServer().start()
    port = int(server.url.rsplit(":", 1)[1])
    generator = VLLMGenerator(server.url, timeout_s=10, retries=0)
    settings = load_settings(quote_min_confidence=1.0)
    with TestClient(create_app(settings, embedder=fake_embedder, generator=generator)) as client:
        sid = client.post("/v1/sessions").json()["session_id"]
        files = [("files", ("attention.pdf", attention_pdf, "application/pdf"))]
        assert client.post(f"/v1/sessions/{sid}/documents", files=files).status_code == 200
        url = f"/v1/sessions/{sid}/query"
        server.stop()
        down = client.post(url, json={"question": GPU_QUESTION})
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "generator_unavailable"
        assert GPU_ANSWER_PAGES & {s["page"] for s in down.json()["sources"]}
        assert client.get("/healthz").json()["generator"]["status"] == "unavailable"
        search = client.post(f"/v1/sessions/{sid}/search", json={"query": GPU_QUESTION})
        assert search.status_code == 200  # retrieval keeps working without a generator
        with FakeVLLMServer(port=port):
            back = client.post(url, json={"question": GPU_QUESTION, "top_k": 3})
            assert back.status_code == 200, back.text
            assert client.get("/healthz").json()["generator"]["status"] == "ready"


@pytest.fixture(scope="module")
def model_down(embedder: Any, attention_pdf: bytes) -> Iterator[tuple[TestClient, str]]:
    """Default settings, the attention paper loaded, and a model that cannot be reached.
    The real embedder: a quote's confidence is fitted on its vectors."""
    model = ScriptedGenerator()
    model.available = False
    with TestClient(create_app(load_settings(), embedder=embedder, generator=model)) as client:
        sid = client.post("/v1/sessions").json()["session_id"]
        files = [("files", ("attention.pdf", attention_pdf, "application/pdf"))]
        assert client.post(f"/v1/sessions/{sid}/documents", files=files).status_code == 200
        yield client, sid


def test_a_confident_quote_answers_in_auto_while_the_model_is_down(
    model_down: tuple[TestClient, str],
) -> None:
    client, sid = model_down
    response = client.post(f"/v1/sessions/{sid}/query", json={"question": GPU_QUESTION})
    assert response.status_code == 200
    assert (response.json()["answer_kind"], "8" in response.json()["answer"]) == ("quoted", True)


@pytest.mark.parametrize("stream", [False, True])
def test_a_quoted_chat_completion_names_the_service_as_its_model(
    model_down: tuple[TestClient, str], stream: bool
) -> None:
    client, sid = model_down
    asked = {"messages": [{"role": "user", "content": GPU_QUESTION}], "stream": stream}
    response = client.post(f"/v1/sessions/{sid}/chat/completions", json=asked)
    assert response.status_code == 200
    first = json.loads(response.text.split("\n")[0].removeprefix("data: ")) if stream else None
    assert (first or response.json())["model"] == "privategptpp"


def test_a_model_dying_mid_answer_gives_503_with_passages(
    client: TestClient, loaded_session: str, generator: ScriptedGenerator
) -> None:
    generator.fail_after_words = 3
    try:
        response = client.post(
            f"/v1/sessions/{loaded_session}/query", json={"question": GPU_QUESTION}
        )
    finally:
        generator.fail_after_words = None
    assert (response.status_code, len(response.json()["sources"])) == (503, 5)


def test_a_stream_broken_mid_answer_ends_with_an_error_event_and_the_passages(
    client: TestClient, loaded_session: str, generator: ScriptedGenerator
) -> None:
    generator.fail_after_words = 3
    try:
        with client.stream(
            "POST",
            f"/v1/sessions/{loaded_session}/query",
            json={"question": GPU_QUESTION, "stream": True},
        ) as response:
            events = parse_sse(response.iter_text())
    finally:
        generator.fail_after_words = None
    assert [name for name, _ in events] == ["token", "token", "token", "error"]
    assert len(events[-1][1]["sources"]) == 5


def test_unknown_session_is_404_on_every_route(client: TestClient) -> None:
    sid = "not-a-session"
    calls = [
        client.get(f"/v1/sessions/{sid}/documents"),
        client.delete(f"/v1/sessions/{sid}"),
        client.delete(f"/v1/sessions/{sid}/documents/abc"),
        client.post(f"/v1/sessions/{sid}/search", json={"query": "q"}),
        client.post(f"/v1/sessions/{sid}/query", json={"question": "q"}),
        client.delete(f"/v1/sessions/{sid}/conversation"),
        client.get(f"/v1/sessions/{sid}/models"),
        client.post(
            f"/v1/sessions/{sid}/chat/completions",
            json={"messages": [{"role": "user", "content": "q"}]},
        ),
        client.post(f"/v1/sessions/{sid}/documents", files=[("files", ("a.txt", b"x"))]),
        client.get(f"/v1/sessions/{sid}/documents/abc/pages/1"),
    ]
    assert [c.status_code for c in calls] == [404] * len(calls)
    assert all(c.json()["error"]["code"] == "session_not_found" for c in calls)
    assert all(c.json()["error"]["type"] == "not_found_error" for c in calls)


def test_oversized_upload_is_413(client: TestClient, session_id: str) -> None:
    big = b"a" * (5 * 1024 * 1024 + 1)
    response = client.post(
        f"/v1/sessions/{session_id}/documents", files=[("files", ("big.txt", big, "text/plain"))]
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert "big.txt" in response.json()["error"]["message"]


def test_non_multipart_upload_is_415(client: TestClient, session_id: str) -> None:
    response = client.post(f"/v1/sessions/{session_id}/documents", json={"files": "x"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "route, body",
    [
        ("search", {"query": ""}),
        ("search", {"query": "q", "top_k": 0}),
        ("query", {"question": "q", "top_k": 100}),
        ("query", {}),
    ],
)
def test_invalid_bodies_are_422(
    client: TestClient, session_id: str, route: str, body: dict[str, Any]
) -> None:
    response = client.post(f"/v1/sessions/{session_id}/{route}", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_api_key_guards_every_v1_route(fake_embedder: Any, generator: ScriptedGenerator) -> None:
    settings = load_settings(api_key="s3cret")
    with TestClient(create_app(settings, embedder=fake_embedder, generator=generator)) as c:
        assert c.get("/healthz").status_code == 200
        missing = c.post("/v1/sessions")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = c.post("/v1/sessions", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = c.post("/v1/sessions", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 201
        sid = ok.json()["session_id"]
        assert c.get(f"/v1/sessions/{sid}/documents").status_code == 401


def test_openapi_lists_exactly_the_documented_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/healthz",
        "/v1/config",
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/sessions/{session_id}/documents",
        "/v1/sessions/{session_id}/documents/{document_id}",
        "/v1/sessions/{session_id}/documents/{document_id}/pages/{page}",
        "/v1/sessions/{session_id}/search",
        "/v1/sessions/{session_id}/query",
        "/v1/sessions/{session_id}/verify",
        "/v1/sessions/{session_id}/conversation",
        "/v1/sessions/{session_id}/chat/completions",
        "/v1/sessions/{session_id}/models",
    }
    assert client.get("/docs").status_code == 200


def parse_sse(lines: Iterator[str]) -> list[tuple[str, dict[str, Any]]]:
    text = "".join(lines)
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events
