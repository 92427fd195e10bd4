"""The API models' enums: the JSON strings on the wire stay the plain words clients know."""

from __future__ import annotations

import json

from core.api_models import (
    AnswerKind,
    ClaimOut,
    ErrorDetail,
    ErrorType,
    GeneratorHealth,
    GeneratorStatus,
    PageUnit,
    Passage,
    Support,
)

PASSAGE = Passage(
    document_id="d1",
    filename="deck.pptx",
    page=2,
    page_end=2,
    section=None,
    char_start=0,
    char_end=4,
    text="Text",
    score=0.5,
    page_unit=PageUnit.SLIDE,
)


def test_enums_are_sent_as_their_words() -> None:
    claim = ClaimOut(text="Eight.", citations=[1], support=Support.WEAK, score=0.4)
    health = GeneratorHealth(status=GeneratorStatus.RESTARTING)
    error = ErrorDetail(code="internal_error", message="Oops.", type=ErrorType.SERVER)
    sent = [json.loads(m.model_dump_json()) for m in (claim, health, PASSAGE, error)]
    words = [sent[0]["support"], sent[1]["status"], sent[2]["page_unit"], sent[3]["type"]]
    assert words == ["weak", "restarting", "slide", "server_error"]


def test_words_received_are_read_as_enum_members() -> None:
    claim = ClaimOut.model_validate_json(
        '{"text": "Eight.", "citations": [1], "support": "unsupported", "score": 0.1}'
    )
    assert (claim.support, AnswerKind("not_found")) == (Support.UNSUPPORTED, AnswerKind.NOT_FOUND)
