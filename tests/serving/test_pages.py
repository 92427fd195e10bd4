"""GET /v1/sessions/{id}/documents/{doc}/pages/{page}: the cited page, its span highlighted.

The fake embedder, FAISS, pypdf, verification and PDFium; the generator is scripted to give
the P100 answer, so the citation and its span come from the real pipeline.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.settings import load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app
from tests.support import GPU_QUESTION

# How each page words it (tests/ingest/test_pdf.py): the text on 7, Table 3's note on 8.
P100_WORDING = {7: "8 NVIDIA P100 GPUs", 8: "8 P100 GPUs"}


@pytest.fixture(scope="module")
def client(fake_embedder: Any) -> Iterator[TestClient]:
    settings = load_settings(max_upload_mb=5, render_max_width_px=1600)
    app = create_app(settings, embedder=fake_embedder, generator=ScriptedGenerator())
    with TestClient(app) as c:
        yield c


def upload(client: TestClient, sid: str, name: str, data: bytes, media_type: str) -> str:
    response = client.post(
        f"/v1/sessions/{sid}/documents", files=[("files", (name, data, media_type))]
    )
    assert response.status_code == 200, response.text
    document_id: str = response.json()["documents"][0]["document_id"]
    return document_id


@pytest.fixture()
def session_id(client: TestClient) -> str:
    sid: str = client.post("/v1/sessions").json()["session_id"]
    return sid


def pdfium_boxes(data: bytes, page: int, phrase: str, width: int) -> list[tuple[float, ...]]:
    """PDFium's tight boxes of ``phrase``'s visible characters, in pixels of the render."""
    pdf = pdfium.PdfDocument(data)
    pdf_page = pdf[page - 1]
    textpage = pdf_page.get_textpage()
    count = textpage.count_chars()
    text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, i)) for i in range(count))
    page_width, page_height = pdf_page.get_size()
    scale = width / page_width
    first = text.index(phrase)
    boxes = []
    for i in range(first, first + len(phrase)):
        left, bottom, right, top = textpage.get_charbox(i)
        if right > left:
            boxes.append(
                (
                    left * scale,
                    (page_height - top) * scale,
                    right * scale,
                    (page_height - bottom) * scale,
                )
            )
    pdf.close()
    return boxes


def test_the_p100_citation_renders_its_page_with_the_words_highlighted(
    client: TestClient, session_id: str, attention_pdf: bytes
) -> None:
    upload(client, session_id, "attention.pdf", attention_pdf, "application/pdf")
    answer = client.post(f"/v1/sessions/{session_id}/query", json={"question": GPU_QUESTION}).json()
    [citation] = answer["citations"]
    span = citation["highlight"]
    assert span is not None and "P100" in citation["text"][span["start"] : span["end"]]
    page = span["page"]
    assert page in P100_WORDING

    response = client.get(
        f"/v1/sessions/{session_id}/documents/{citation['document_id']}/pages/{page}",
        params={"start": span["page_start"], "end": span["page_end"], "width": 1000},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    view = json.loads(response.headers["x-page-view"])
    with Image.open(io.BytesIO(response.content)) as png:
        assert png.size == (view["width"], view["height"]) and view["width"] == 1000
    rectangles = view["highlights"]
    assert rectangles and all(
        0 <= left < right <= view["width"] and 0 <= top < bottom <= view["height"]
        for left, top, right, bottom in rectangles
    )
    characters = pdfium_boxes(attention_pdf, page, P100_WORDING[page], 1000)
    assert len(characters) == len(P100_WORDING[page].replace(" ", ""))
    for c_left, c_top, c_right, c_bottom in characters:
        assert any(
            left - 1 <= c_left
            and c_right <= right + 1
            and top - 1 <= c_top
            and c_bottom <= bottom + 1
            for left, top, right, bottom in rectangles
        ), "a character of the phrase is not highlighted"


def test_a_text_document_gives_json_with_the_span_marked(
    client: TestClient, session_id: str
) -> None:
    text = "Minutes of the lighthouse committee.\n\nThe codename is HERON. Nobody else knows."
    document_id = upload(client, session_id, "minutes.md", text.encode(), "text/markdown")
    start = text.index("The codename")
    end = start + len("The codename is HERON.")
    response = client.get(
        f"/v1/sessions/{session_id}/documents/{document_id}/pages/1",
        params={"start": start, "end": end},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    marked = body["text"][body["highlight"]["start"] : body["highlight"]["end"]]
    assert (body["page"], body["offset"], marked) == (1, 0, "The codename is HERON.")


def test_document_info_shows_the_memory_it_holds(
    client: TestClient, session_id: str, attention_pdf: bytes
) -> None:
    upload(client, session_id, "attention.pdf", attention_pdf, "application/pdf")
    [document] = client.get(f"/v1/sessions/{session_id}/documents").json()["documents"]
    assert document["size_bytes"] == len(attention_pdf)
    assert len(attention_pdf) < document["memory_bytes"] < 1.2 * len(attention_pdf)


def test_deleting_the_document_or_the_session_makes_the_page_404(
    client: TestClient, session_id: str, pdf_dir: Any
) -> None:
    data = (pdf_dir / "crazyones.pdf").read_bytes()
    first = upload(client, session_id, "crazyones.pdf", data, "application/pdf")
    second = upload(client, session_id, "again.pdf", data, "application/pdf")
    url = f"/v1/sessions/{session_id}/documents"
    assert client.get(f"{url}/{first}/pages/1").status_code == 200
    session = client.app.state.services.store.get(session_id)  # type: ignore[attr-defined]
    held = session.memory_bytes

    assert client.delete(f"{url}/{first}").status_code == 204
    gone = client.get(f"{url}/{first}/pages/1")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "document_not_found"
    assert session.memory_bytes == held // 2 and first not in session.sources

    assert client.delete(f"/v1/sessions/{session_id}").status_code == 204
    gone = client.get(f"{url}/{second}/pages/1")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"
    assert session.sources == {} and session.memory_bytes == 0


@pytest.mark.parametrize(
    "page, params, status, code",
    [
        (2, {}, 404, "page_not_found"),
        (1, {"start": 5}, 400, "invalid_request"),
        (1, {"start": 9, "end": 3}, 400, "invalid_request"),
        (1, {"start": 10**6, "end": 10**6 + 5}, 400, "invalid_request"),
        (1, {"width": 5000}, 400, "invalid_request"),
        (1, {"width": 10}, 422, "invalid_request"),
    ],
)
def test_bad_page_requests_are_refused_clearly(
    client: TestClient,
    session_id: str,
    pdf_dir: Any,
    page: int,
    params: dict[str, int],
    status: int,
    code: str,
) -> None:
    data = (pdf_dir / "crazyones.pdf").read_bytes()
    document_id = upload(client, session_id, "crazyones.pdf", data, "application/pdf")
    response = client.get(
        f"/v1/sessions/{session_id}/documents/{document_id}/pages/{page}", params=params
    )
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert response.json()["error"]["message"]


def test_a_second_render_in_the_same_session_waits_its_turn(
    client: TestClient, session_id: str, pdf_dir: Any
) -> None:
    data = (pdf_dir / "crazyones.pdf").read_bytes()
    document_id = upload(client, session_id, "crazyones.pdf", data, "application/pdf")
    session = client.app.state.services.store.get(session_id)  # type: ignore[attr-defined]
    with session.render_lock:  # as if a render were running
        busy = client.get(f"/v1/sessions/{session_id}/documents/{document_id}/pages/1")
    assert busy.status_code == 429 and busy.json()["error"]["code"] == "render_busy"
    later = client.get(f"/v1/sessions/{session_id}/documents/{document_id}/pages/1")
    assert later.status_code == 200
