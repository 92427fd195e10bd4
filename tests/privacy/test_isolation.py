"""Nobody sees another's documents: sessions are sealed from each other.

Two sessions hold different documents; every search and question in one returns only
its own passages (and the prompt sent to the LLM holds only those), a document id of
one session means nothing in the other, and an unknown, guessed or altered session
id is a 404 on every route. The fake embedder, real FAISS and routes; scripted generator.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app

# Each session's own facts; the questions below ask for the other session's.
HARBOUR = [
    "The harbour master Amelia Stone counts 347 green umbrellas in the lighthouse.",
    "Every spring the lighthouse keepers repaint the umbrellas a darker green.",
]
BAKERY = [
    "The bakery on Rue Clair sells 58 blue croissants before seven in the morning.",
    "Its baker, Jonas Weber, colours the croissant dough with butterfly pea flowers.",
]
NAMES = {"harbour": "Amelia", "bakery": "Jonas"}
QUESTIONS = [
    "How many green umbrellas are in the lighthouse?",
    "Who is the harbour master?",
    "How many blue croissants does the bakery sell?",
    "Who is the baker on Rue Clair?",
    "The crazy ones, the misfits, the rebels",
]


@pytest.fixture(scope="module")
def generator() -> ScriptedGenerator:
    return ScriptedGenerator("From the passages [1].")


@pytest.fixture(scope="module")
def client(fake_embedder: Any, generator: ScriptedGenerator) -> Iterator[TestClient]:
    app = create_app(load_settings(), embedder=fake_embedder, generator=generator)
    with TestClient(app) as test_client:
        yield test_client


def make_session(client: TestClient, files: list[tuple[str, bytes, str]]) -> tuple[str, set[str]]:
    sid: str = client.post("/v1/sessions").json()["session_id"]
    response = client.post(
        f"/v1/sessions/{sid}/documents", files=[("files", file) for file in files]
    )
    assert response.status_code == 200 and not response.json()["errors"], response.text
    return sid, {d["document_id"] for d in response.json()["documents"]}


@pytest.fixture(scope="module")
def sessions(client: TestClient, pdf_dir: Path) -> dict[str, tuple[str, set[str]]]:
    crazy = (pdf_dir / "crazyones.pdf").read_bytes()
    return {
        "harbour": make_session(
            client,
            [
                ("harbour.txt", "\n\n".join(HARBOUR).encode(), "text/plain"),
                ("crazyones.pdf", crazy, "application/pdf"),
            ],
        ),
        "bakery": make_session(
            client, [("bakery.md", "\n\n".join(BAKERY).encode(), "text/markdown")]
        ),
    }


def texts_of(passages: list[dict[str, Any]]) -> str:
    return " ".join(p["text"] for p in passages)


@pytest.mark.parametrize("question", QUESTIONS)
def test_search_and_query_return_only_the_sessions_own_passages(
    client: TestClient,
    generator: ScriptedGenerator,
    sessions: dict[str, tuple[str, set[str]]],
    question: str,
) -> None:
    for own, other in (("harbour", "bakery"), ("bakery", "harbour")):
        sid, own_ids = sessions[own]
        foreign = HARBOUR if other == "harbour" else BAKERY
        found = client.post(f"/v1/sessions/{sid}/search", json={"query": question, "top_k": 50})
        results = found.json()["results"]
        assert results and {p["document_id"] for p in results} <= own_ids
        assert not any(line in texts_of(results) for line in foreign)

        # generate: the prompt is always built, so it can be checked for foreign text.
        body = {"question": question, "answer_mode": "generate"}
        answered = client.post(f"/v1/sessions/{sid}/query", json=body).json()
        passages = answered["sources"] + answered["citations"]
        assert passages and {p["document_id"] for p in passages} <= own_ids
        prompt = " ".join(message["content"] for message in generator.last_messages)
        assert not any(line in prompt for line in foreign)
        assert NAMES[other] not in prompt


def test_listing_shows_only_the_sessions_own_documents(
    client: TestClient, sessions: dict[str, tuple[str, set[str]]]
) -> None:
    for sid, own_ids in sessions.values():
        listed = client.get(f"/v1/sessions/{sid}/documents").json()["documents"]
        assert {d["document_id"] for d in listed} == own_ids


def test_another_sessions_document_id_is_not_found(
    client: TestClient, sessions: dict[str, tuple[str, set[str]]]
) -> None:
    harbour_sid, harbour_ids = sessions["harbour"]
    bakery_sid, _ = sessions["bakery"]
    for document_id in harbour_ids:
        response = client.delete(f"/v1/sessions/{bakery_sid}/documents/{document_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "document_not_found"
    listed = client.get(f"/v1/sessions/{harbour_sid}/documents").json()["documents"]
    assert {d["document_id"] for d in listed} == harbour_ids


def altered_ids(sid: str) -> list[tuple[str, str]]:
    """Wrong ids and the error code each gets: an unknown session, or (for an id that
    decodes to a path) no route at all."""
    flip = "A" if sid[-1] != "A" else "B"
    unknown = [
        sid[:-1] + flip,  # one character changed
        flip + sid[1:],
        sid[:-1],  # truncated
        sid + "A",  # extended
        sid.swapcase(),
        secrets.token_urlsafe(32),  # a well-formed guess
        "0" * 43,
    ]
    return [(wrong, "session_not_found") for wrong in unknown] + [
        ("..%2F..%2Fetc%2Fpasswd", "not_found")
    ]


def test_guessed_or_altered_session_ids_are_not_found_on_any_route(
    client: TestClient, sessions: dict[str, tuple[str, set[str]]]
) -> None:
    sid, own_ids = sessions["harbour"]
    document_id = next(iter(own_ids))
    for wrong, code in altered_ids(sid):
        base = f"/v1/sessions/{wrong}"
        responses = [
            client.get(f"{base}/documents"),
            client.post(f"{base}/search", json={"query": QUESTIONS[0]}),
            client.post(f"{base}/query", json={"question": QUESTIONS[0]}),
            client.post(f"{base}/documents", files=[("files", ("x.txt", b"Words.", "text/plain"))]),
            client.delete(f"{base}/documents/{document_id}"),
            client.delete(base),
        ]
        for response in responses:
            assert response.status_code == 404, (wrong, response.text)
            assert response.json()["error"]["code"] == code, (wrong, response.text)
    # Nothing above touched the real session.
    listed = client.get(f"/v1/sessions/{sid}/documents").json()["documents"]
    assert {d["document_id"] for d in listed} == own_ids


def test_session_ids_are_long_and_random(client: TestClient) -> None:
    ids = [client.post("/v1/sessions").json()["session_id"] for _ in range(20)]
    assert len(set(ids)) == len(ids)
    assert all(len(sid) >= 43 for sid in ids)  # 256 random bits, base64url
    for sid in ids:
        assert client.delete(f"/v1/sessions/{sid}").status_code == 204
