"""GET /v1/config: the server's settings a client needs, so the UI never reads Settings."""

from __future__ import annotations

from core.api_models import ClientConfig
from core.settings import AnswerMode, load_settings
from ingest.formats import accepted_extensions, accepted_types
from serving.routes.config import client_config


def test_the_config_carries_the_limits_formats_and_answer_settings() -> None:
    settings = load_settings(
        max_upload_mb=7,
        session_ttl_s=120,
        top_k=8,
        answer_max_tokens=200,
        temperature=0.3,
        answer_mode=AnswerMode.EXTRACT,
    )
    assert client_config(settings) == ClientConfig(
        max_upload_mb=7,
        session_ttl_s=120,
        accepted_extensions=list(accepted_extensions()),
        accepted_types=accepted_types(),
        top_k=8,
        max_tokens=200,
        temperature=0.3,
        answer_mode=AnswerMode.EXTRACT,
    )
