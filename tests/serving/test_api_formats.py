"""Scans, images and the Office/HTML formats through the REST API, with the fake embedder,
FAISS and OCR: found by a question, cited by page, slide, sheet or heading."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.settings import load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app
from tests.ingest.office_documents import (
    csv_bytes,
    docx_bytes,
    html_bytes,
    image_only_pdf,
    png_bytes,
    pptx_bytes,
    rendered_pages,
    xlsx_bytes,
)

GPU_QUESTION = "How many P100 GPUs were used to train the big model?"
BUDGET_QUESTION = "What is the lighthouse budget for 2025?"
# Pages 1-6 of the scan are blank (OCR finds nothing there quickly), 7-8 are the paper's
# pages 7-8: page numbers stay those of the paper while only two pages cost real OCR.
BLANK_PAGES = 6


@pytest.fixture(scope="module")
def client(fake_embedder: Any) -> Iterator[TestClient]:
    settings = load_settings(max_upload_mb=20, parse_timeout_s=600)
    with TestClient(
        create_app(settings, embedder=fake_embedder, generator=ScriptedGenerator())
    ) as c:
        yield c


def new_session(client: TestClient) -> str:
    sid: str = client.post("/v1/sessions").json()["session_id"]
    return sid


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture(scope="module")
def paper_pages_7_8(pdf_dir: Path) -> list[Image.Image]:
    return rendered_pages(pdf_dir / "attention-is-all-you-need.pdf", [7, 8])  # type: ignore[return-value]


@pytest.fixture(scope="module")
def scanned_upload(
    client: TestClient, paper_pages_7_8: list[Image.Image]
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    blank = Image.new("RGB", paper_pages_7_8[0].size, "white")
    scan = image_only_pdf([blank] * BLANK_PAGES + paper_pages_7_8)
    sid = new_session(client)
    response = client.post(
        f"/v1/sessions/{sid}/documents?stream=true",
        files=[("files", ("scanned-paper.pdf", scan, "application/pdf"))],
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return sid, parse_sse(response.text)


@pytest.mark.slow  # OCR of an 8-page scan (shared with the next test)
def test_scanned_pdf_upload_streams_pages_done_of_total(
    scanned_upload: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    _, events = scanned_upload
    progress = [
        (data["pages_done"], data["pages_total"]) for name, data in events if name == "progress"
    ]
    assert progress == [(done, BLANK_PAGES + 2) for done in range(BLANK_PAGES + 3)]
    assert [name for name, _ in events][-2:] == ["document", "done"]
    document = events[-2][1]
    assert document["ocr_pages"] == [7, 8]
    assert events[-1][1]["documents"] == [document]


@pytest.mark.slow  # OCR of an 8-page scan (shared with the test above)
def test_scanned_pdf_is_found_on_page_7_or_8(
    client: TestClient, scanned_upload: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    sid, _ = scanned_upload
    results = client.post(
        f"/v1/sessions/{sid}/search", json={"query": GPU_QUESTION, "top_k": 3}
    ).json()["results"]
    top = results[0]
    assert top["page"] in (7, 8) and top["ocr"] is True
    assert any("P100" in passage["text"] for passage in results)
    listed = client.get(f"/v1/sessions/{sid}/documents").json()["documents"]
    assert listed[0]["ocr_pages"] == [7, 8]


def test_page_as_png_is_read_by_ocr_and_found(
    client: TestClient, paper_pages_7_8: list[Image.Image]
) -> None:
    sid = new_session(client)
    uploaded = client.post(
        f"/v1/sessions/{sid}/documents",
        files=[("files", ("page7.png", png_bytes(paper_pages_7_8[0]), "image/png"))],
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["documents"][0]["ocr_pages"] == [1]
    results = client.post(
        f"/v1/sessions/{sid}/search", json={"query": GPU_QUESTION, "top_k": 3}
    ).json()["results"]
    assert any("P100" in passage["text"] for passage in results)
    assert (results[0]["filename"], results[0]["page"], results[0]["ocr"]) == ("page7.png", 1, True)


FORMATS = [
    # filename, bytes, question, (page_unit, page, section) of the top passage
    ("plan.docx", docx_bytes, BUDGET_QUESTION, ("document", 1, "Annual plan > Lighthouse budget")),
    ("plan.pptx", pptx_bytes, BUDGET_QUESTION, ("slide", 2, "Budget")),
    (
        "plan.xlsx",
        xlsx_bytes,
        "What is the lighthouse station budget in Bergen?",
        ("sheet", 2, "Budget 2025"),
    ),
    ("stations.csv", csv_bytes, "Which city has the radio beacon?", ("sheet", 1, "stations")),
    ("plan.html", html_bytes, BUDGET_QUESTION, ("document", 1, "Coastal plan > Lighthouse budget")),
]


@pytest.mark.parametrize(("filename", "build", "question", "place"), FORMATS)
def test_new_format_is_found_with_its_place_in_the_citation(
    client: TestClient, filename: str, build: Any, question: str, place: tuple[str, int, str]
) -> None:
    sid = new_session(client)
    uploaded = client.post(
        f"/v1/sessions/{sid}/documents",
        files=[("files", (filename, build(), "application/octet-stream"))],
    )
    assert uploaded.status_code == 200, uploaded.text
    top = client.post(f"/v1/sessions/{sid}/search", json={"query": question, "top_k": 1}).json()[
        "results"
    ][0]
    assert (top["page_unit"], top["page"], top["section"]) == place


@pytest.mark.parametrize(
    ("filename", "data", "code"),
    [
        ("plan.docx", docx_bytes()[:2000], "corrupt_document"),
        ("plan.pptx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "password_protected"),
        ("plan.xlsx", b"PK\x03\x04 broken", "corrupt_document"),
        ("stations.csv", bytes(range(256)) * 4, "corrupt_document"),
        ("plan.html", bytes(range(256)) * 4, "corrupt_document"),
        ("scan.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "corrupt_document"),
    ],
)
def test_bad_file_of_a_new_type_is_a_422_naming_it(
    client: TestClient, filename: str, data: bytes, code: str
) -> None:
    sid = new_session(client)
    response = client.post(
        f"/v1/sessions/{sid}/documents",
        files=[("files", (filename, data, "application/octet-stream"))],
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"].startswith(f"'{filename}' is a")
