"""An upload's answer says how long each stage took, and the log says it without content."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.fakes import ScriptedGenerator
from serving.app import create_app

FILENAME = "secret-plans.pdf"


def test_the_upload_answer_and_log_carry_the_stage_timings_without_content(
    fake_embedder: Any, attention_pdf: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(load_settings(), embedder=fake_embedder, generator=ScriptedGenerator())
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="rag.pipeline"):
        session_id = client.post("/v1/sessions").json()["session_id"]
        response = client.post(
            f"/v1/sessions/{session_id}/documents",
            files=[("files", (FILENAME, attention_pdf, "application/pdf"))],
        )
        listed = client.get(f"/v1/sessions/{session_id}/documents").json()["documents"]
    timings = response.json()["documents"][0]["timings"]
    assert set(timings) == {"parse_ms", "ocr_ms", "chunk_ms", "embed_ms", "index_ms"}
    assert timings["parse_ms"] > 0 and timings["chunk_ms"] > 0 and timings["embed_ms"] > 0
    assert listed[0]["timings"] is None  # the upload's own figures, not the document's
    (line,) = [r.getMessage() for r in caplog.records if "document indexed" in r.getMessage()]
    assert line.startswith("document indexed: application/pdf, 15 pages (0 by OCR), ")
    assert "secret" not in line and "Attention" not in line
