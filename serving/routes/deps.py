"""What every /v1 route depends on: the services, the API key, the session in the path."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, status
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import api_models as models
from rag.sessions import Session
from serving.wiring import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def require_api_key(request: Request, services: ServicesDep) -> None:
    expected = services.settings.api_key
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise StarletteHTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing or wrong API key: send 'Authorization: Bearer <key>'.",
        )


def get_session(session_id: str, services: ServicesDep) -> Iterator[Session]:
    # FastAPI runs the code after `yield` once the response is sent, streams included.
    with services.store.use(session_id) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": models.ErrorBody},
    404: {"model": models.ErrorBody},
    422: {"model": models.ErrorBody},
}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
