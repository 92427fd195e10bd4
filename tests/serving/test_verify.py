"""POST /v1/sessions/{id}/verify: any text checked against the session's documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app

FILING = (
    "Consolidated Statements of Operations (in millions, except per share data)\n"
    "Year Ended December 31, 2016 2017\n"
    "Total net sales $ 135,987 $ 177,866\n"
    "Operating income 4,186 4,106\n"
)


@pytest.fixture(scope="module")
def client(embedder: Any) -> Iterator[TestClient]:
    app = create_app(load_settings(), embedder=embedder, generator=ScriptedGenerator())
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def session(client: TestClient) -> str:
    sid: str = client.post("/v1/sessions").json()["session_id"]
    files = [("files", ("filing.txt", FILING.encode(), "text/plain"))]
    response = client.post(f"/v1/sessions/{sid}/documents", files=files)
    assert response.status_code == 200, response.text
    return sid


def verify(client: TestClient, session: str, text: str) -> list[dict[str, Any]]:
    response = client.post(f"/v1/sessions/{session}/verify", json={"text": text})
    assert response.status_code == 200, response.text
    sentences: list[dict[str, Any]] = response.json()["sentences"]
    return sentences


def test_a_computed_figure_is_supported_with_its_derivation(
    client: TestClient, session: str
) -> None:
    (sentence,) = verify(client, session, "Total net sales grew 30.8% from 2016 to 2017.")
    assert sentence["support"] == "supported" and sentence["passage"] == 1
    (growth,) = [n for n in sentence["numbers"] if n["backing"] == "follows"]
    assert growth["operation"] == "percent change"
    assert [o["text"] for o in growth["operands"]] == ["$ 177,866", "$ 135,987"]


def test_each_sentence_gets_its_own_label(client: TestClient, session: str) -> None:
    text = "Total net sales were $177,866 million in 2017. Total net sales were $278 billion."
    labels = [s["support"] for s in verify(client, session, text)]
    assert labels == ["supported", "unsupported"]


def test_a_session_without_documents_checks_nothing(client: TestClient) -> None:
    sid = client.post("/v1/sessions").json()["session_id"]
    assert verify(client, sid, "Total net sales grew 30.8%.") == []
