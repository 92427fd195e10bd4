"""What a client needs of the server's configuration: the UI reads it instead of Settings."""

from __future__ import annotations

from fastapi import APIRouter

from core import api_models as models
from core.settings import Settings
from ingest.formats import accepted_extensions, accepted_types
from serving.routes.deps import ServicesDep

router = APIRouter()


def client_config(settings: Settings) -> models.ClientConfig:
    return models.ClientConfig(
        max_upload_mb=settings.max_upload_mb,
        session_ttl_s=settings.session_ttl_s,
        accepted_extensions=list(accepted_extensions()),
        accepted_types=accepted_types(),
        top_k=settings.top_k,
        max_tokens=settings.answer_max_tokens,
        temperature=settings.temperature,
        answer_mode=settings.answer_mode,
    )


@router.get("/config")
def get_config(services: ServicesDep) -> models.ClientConfig:
    return client_config(services.settings)
