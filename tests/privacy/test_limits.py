"""Sessions end on their own, and full sessions or a full server refuse clearly.

An idle session is evicted after PGPT_SESSION_TTL_S by the API's background sweep,
with no request needed. Per-session, global and session-count caps answer
507 capacity_exceeded (a document too big for any session: 422) instead of letting
memory grow until the host swaps or the process is killed; the server keeps answering.
The fake embedder, real FAISS and routes in-process; scripted generator.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import serving.app
from core.settings import Settings, load_settings
from ingest.text import parse_text
from rag.fakes import ScriptedGenerator
from rag.pipeline import make_chunker
from serving.app import create_app

VOCABULARY = [
    "river",
    "stone",
    "cloud",
    "amber",
    "field",
    "lantern",
    "orchard",
    "copper",
    "meadow",
    "signal",
]


def words(n: int, offset: int = 0) -> bytes:
    return " ".join(VOCABULARY[(i + offset) % len(VOCABULARY)] for i in range(n)).encode()


def chunk_count(data: bytes, settings: Settings, fake_embedder: Any) -> int:
    """How many passages the ingestion pipeline makes of this text."""
    chunker = make_chunker(settings, fake_embedder)
    document = parse_text(data, "probe.txt", markdown=False, max_pages=settings.max_pages)
    return len(chunker.split(document, "probe"))


def upload(client: TestClient, sid: str, name: str, data: bytes) -> Any:
    return client.post(
        f"/v1/sessions/{sid}/documents", files=[("files", (name, data, "text/plain"))]
    )


def new_session(client: TestClient) -> str:
    response = client.post("/v1/sessions")
    assert response.status_code == 201, response.text
    sid: str = response.json()["session_id"]
    return sid


def assert_capacity_refusal(response: Any, *phrases: str) -> None:
    assert response.status_code == 507, response.text
    body = response.json()
    assert body["error"]["code"] == "capacity_exceeded"
    for phrase in phrases:
        assert phrase in body["error"]["message"], body["error"]["message"]


@pytest.mark.slow  # waits for a real TTL to pass
def test_idle_sessions_are_evicted_after_their_ttl(
    fake_embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving.app, "EVICTION_INTERVAL_S", 0.2)
    app = create_app(
        load_settings(session_ttl_s=2), embedder=fake_embedder, generator=ScriptedGenerator()
    )
    with TestClient(app) as client:
        store = app.state.services.store
        idle, busy = new_session(client), new_session(client)
        assert upload(client, idle, "idle.txt", words(300)).status_code == 200
        assert store.budget.used > 0
        # Keep one session in use; never touch the other again.
        deadline = time.monotonic() + 60
        while client.get("/healthz").json()["sessions"] > 1:
            assert time.monotonic() < deadline, "the idle session was never evicted"
            assert client.get(f"/v1/sessions/{busy}/documents").status_code == 200
            time.sleep(0.3)
        assert store.budget.used == 0  # the evicted session's passages are released
        gone = client.get(f"/v1/sessions/{idle}/documents")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "session_not_found"
        assert client.get(f"/v1/sessions/{busy}/documents").status_code == 200


@pytest.fixture(scope="module")
def document_chunks(fake_embedder: Any) -> tuple[bytes, int]:
    data = words(1_200)
    chunks = chunk_count(data, load_settings(), fake_embedder)
    assert chunks >= 3
    return data, chunks


@pytest.fixture()
def capped_client(fake_embedder: Any, document_chunks: tuple[bytes, int]) -> Iterator[TestClient]:
    """Caps sized from one document of c passages: a session holds one (c + 1), the
    server one and a half (c + c/2), and there are at most three sessions."""
    _, c = document_chunks
    settings = load_settings(
        max_sessions=3, max_chunks_per_session=c + 1, max_total_chunks=c + c // 2
    )
    with TestClient(
        create_app(settings, embedder=fake_embedder, generator=ScriptedGenerator())
    ) as tc:
        yield tc


def test_a_full_session_refuses_more(
    capped_client: TestClient, document_chunks: tuple[bytes, int]
) -> None:
    data, _ = document_chunks
    sid = new_session(capped_client)
    assert upload(capped_client, sid, "first.txt", data).status_code == 200
    refused = upload(capped_client, sid, "second.txt", words(1_200, offset=3))
    assert_capacity_refusal(refused, "'second.txt'", "start a new session")
    listed = capped_client.get(f"/v1/sessions/{sid}/documents").json()["documents"]
    assert [d["filename"] for d in listed] == ["first.txt"]
    found = capped_client.post(f"/v1/sessions/{sid}/search", json={"query": "amber lantern"})
    assert found.status_code == 200 and found.json()["results"]


def test_a_full_server_refuses_more_until_space_is_freed(
    capped_client: TestClient, document_chunks: tuple[bytes, int]
) -> None:
    data, _ = document_chunks
    first, second = new_session(capped_client), new_session(capped_client)
    assert upload(capped_client, first, "a.txt", data).status_code == 200
    refused = upload(capped_client, second, "b.txt", data)
    assert_capacity_refusal(refused, "PGPT_MAX_TOTAL_CHUNKS")
    assert capped_client.delete(f"/v1/sessions/{first}").status_code == 204
    assert upload(capped_client, second, "b.txt", data).status_code == 200


def test_too_many_sessions_are_refused(capped_client: TestClient) -> None:
    sessions = [new_session(capped_client) for _ in range(3)]
    assert_capacity_refusal(capped_client.post("/v1/sessions"), "sessions")
    assert capped_client.delete(f"/v1/sessions/{sessions[0]}").status_code == 204
    assert capped_client.post("/v1/sessions").status_code == 201


def test_a_document_bigger_than_any_session_is_refused_as_such(
    capped_client: TestClient, document_chunks: tuple[bytes, int]
) -> None:
    sid = new_session(capped_client)
    response = upload(capped_client, sid, "tome.txt", words(1_200) * 4)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "document_too_complex"
    assert "PGPT_MAX_CHUNKS_PER_SESSION" in response.json()["error"]["message"]
    assert capped_client.get("/healthz").status_code == 200
