"""Nothing of an uploaded document reaches the disk or the servers' output.

The real deployment (`pgpt vllm` + `pgpt serve` as subprocesses) runs with HOME,
TMPDIR, the XDG folders and its working directory in fresh empty folders. Documents
carrying a unique canary (PDF, text, Markdown, Word, PowerPoint, Excel, CSV, HTML, and,
through OCR, an image and a scanned PDF whose canary exists only as pixels) are
uploaded, searched, asked about (plain and streamed), their cited pages shown (PDF pages
rendered, text pages excerpted), and the session is deleted; the servers are stopped.
Then every file in those folders, in /tmp, /dev/shm and /var/tmp, in the model cache,
and every file of the project changed since the servers started is searched for the
canaries and for a distinctive byte run of the uploaded PDF: none may hold any. Neither
may the servers' stdout and stderr. This test writes the canary nowhere itself: the
documents are built in memory and the server output is collected in memory.
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.ingest.office_documents import (
    docx_bytes,
    html_bytes,
    image_only_pdf,
    pptx_bytes,
    text_image,
)
from tests.privacy.documents import text_pdf
from tests.privacy.servers import (
    PROJECT_ROOT,
    SYSTEM_TEMP_FOLDERS,
    LocalStack,
    iter_files,
    model_cache_dir,
    search_files,
)

# Over 5 MB: far past the 1 MB where Starlette's own multipart parser spools to disk.
BIG_PDF_PADDING_BYTES = 6 * 1024 * 1024
QUESTION = "What is the secret project codename?"
SCAN_QUESTION = "What is the scanned harbour codename?"
# Letters OCR reads without case or shape mix-ups (no C/O/S/W/X/Z, no I/1, B/8).
OCR_LETTERS = "ADEFHLNRT"


def canary_documents(canary: str, ocr_canary: str, padding: bytes) -> list[tuple[str, bytes, str]]:
    sentence = f"The secret project codename is {canary}, chosen by the lighthouse committee."
    lines = [sentence, "Only the three members of the committee know the codename."]
    scan_lines = [f"Scanned harbour codename {ocr_canary} for the", "lighthouse committee."]
    scan = text_image(scan_lines, font_size=44)
    office = "application/vnd.openxmlformats-officedocument"
    return [
        # The OCR path twice: an image, and a scanned (image-only) PDF rendered by pdfium.
        ("codename-photo.png", scan, "image/png"),
        ("codename-scan.pdf", image_only_pdf([Image.open(io.BytesIO(scan))]), "application/pdf"),
        ("codename.docx", docx_bytes(sentence), f"{office}.wordprocessingml.document"),
        ("codename.pptx", pptx_bytes(sentence), f"{office}.presentationml.presentation"),
        ("codename.xlsx", xlsx_with(sentence), f"{office}.spreadsheetml.sheet"),
        ("codename.csv", f"Topic,Detail\nCodename,{sentence}\n".encode(), "text/csv"),
        ("codename.html", html_bytes(sentence), "text/html"),
        ("codename.pdf", text_pdf([lines]), "application/pdf"),
        ("codename-padded.pdf", text_pdf([lines, lines], padding=padding), "application/pdf"),
        ("codename.md", f"# Codenames\n\n{sentence}\n".encode(), "text/markdown"),
        # Windows-1252, so the legacy-encoding path runs too.
        ("café.txt", f"Café minutes. {sentence}\n".encode("cp1252"), "text/plain"),
    ]


def xlsx_with(sentence: str) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Topic", "Detail"])
    sheet.append(["Codename", sentence])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.vllm
def test_nothing_of_a_document_is_written_or_logged(local_stack: LocalStack) -> None:
    canary = f"PGPTCANARY{secrets.token_hex(12).upper()}"
    ocr_canary = "RD" + "".join(secrets.choice(OCR_LETTERS) for _ in range(10))
    padding = secrets.token_bytes(BIG_PDF_PADDING_BYTES)
    byte_run = padding[len(padding) // 2 : len(padding) // 2 + 64]
    needles = {
        "canary": canary.encode(),
        "canary (UTF-16)": canary.encode("utf-16-le"),
        "byte run of the uploaded PDF": byte_run,
        "canary read by OCR": ocr_canary.encode(),
    }
    documents = canary_documents(canary, ocr_canary, padding)
    padded = next(data for name, data, _ in documents if name == "codename-padded.pdf")
    assert len(padded) > 5 * 1024 * 1024

    with httpx.Client(base_url=local_stack.api_url, timeout=600) as client:
        sid = client.post("/v1/sessions").json()["session_id"]
        url = f"/v1/sessions/{sid}"
        for name, data, media_type in documents:
            uploaded = client.post(f"{url}/documents", files=[("files", (name, data, media_type))])
            assert uploaded.status_code == 200, uploaded.json()["error"]
        listed = client.get(f"{url}/documents").json()["documents"]
        assert len(listed) == len(documents)

        listed = client.get(f"{url}/documents").json()["documents"]
        assert [d["ocr_pages"] for d in listed[:2]] == [[1], [1]]
        found = client.post(f"{url}/search", json={"query": QUESTION, "top_k": 3}).json()
        assert any(canary in passage["text"] for passage in found["results"])
        scanned = client.post(f"{url}/search", json={"query": SCAN_QUESTION, "top_k": 3}).json()
        assert any(ocr_canary in passage["text"] for passage in scanned["results"])
        answer = client.post(f"{url}/query", json={"question": QUESTION, "max_tokens": 48})
        assert answer.status_code == 200
        assert any(canary in source["text"] for source in answer.json()["sources"])
        with client.stream(
            "POST", f"{url}/query", json={"question": QUESTION, "stream": True, "max_tokens": 48}
        ) as streamed:
            events = "".join(streamed.iter_text())
        assert streamed.status_code == 200 and "event: done" in events

        # Every document's first page, its first 40 characters (the canary sentence) marked.
        for document, (_, _, media_type) in zip(listed, documents, strict=True):
            shown = client.get(
                f"{url}/documents/{document['document_id']}/pages/1",
                params={"start": 0, "end": 40, "width": 1200},
            )
            assert shown.status_code == 200, shown.text
            if media_type == "application/pdf":
                assert shown.headers["content-type"] == "image/png"
                # A scan has no text layer for PDFium to box: its page shows unmarked.
                highlighted = bool(json.loads(shown.headers["x-page-view"])["highlights"])
                assert highlighted == (not document["ocr_pages"])
            elif media_type == "image/png":  # text around the span, read by OCR
                assert ocr_canary in shown.json()["text"]
            elif media_type.startswith("text/"):  # the canary sentence opens these
                assert canary in shown.json()["text"]
            else:  # Office and HTML: page 1 may be a title slide; the route still serves it
                assert shown.json()["text"]

        assert client.delete(url).status_code == 204
        assert client.get(f"{url}/documents").status_code == 404

    assert local_stack.stop() == [], "processes outlived the servers"
    for name, output in local_stack.outputs:
        assert output, f"{name} printed nothing: is its output being captured?"
        leaked = [label for label, needle in needles.items() if needle in output]
        assert leaked == [], f"{name}'s output holds the {leaked}"

    sandbox = local_stack.sandbox
    # The search must be able to find something: a marker planted in the sandbox.
    marker = f"SCAN-SELF-CHECK-{secrets.token_hex(8)}".encode()
    (sandbox.root / "tmp" / "self-check").write_bytes(b"x" * 10_000_000 + marker)
    created = [path for folder in sandbox.folders for path in iter_files(folder)]
    print("files the servers created in the sandbox:", [str(p) for p in created])
    # ONNX Runtime ran for OCR; its telemetry (device id, event store) stayed off.
    assert [str(p) for p in created if "Microsoft" in p.parts] == []
    places = [*sandbox.folders, *SYSTEM_TEMP_FOLDERS, model_cache_dir()]
    files: list[Path] = [path for place in places for path in iter_files(place)]
    files += iter_files(PROJECT_ROOT, newer_than=local_stack.started_at)
    result = search_files(files, {**needles, "self-check marker": marker})
    assert result.hits == {f"{sandbox.root / 'tmp' / 'self-check'}: self-check marker"}
    assert result.files > 1
