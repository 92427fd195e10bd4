"""Sessions: create one, delete one, start its conversation over."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from core import api_models as models
from serving.routes.deps import ServicesDep, SessionDep

router = APIRouter()


def iso(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
def create_session(services: ServicesDep, response: Response) -> models.SessionCreated:
    session = services.store.create()
    # Lets a load balancer pin the session to this replica (sessions live in its memory).
    response.headers["Location"] = f"/v1/sessions/{session.id}"
    return models.SessionCreated(session_id=session.id, expires_at=iso(session.expires_at))


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_session(session_id: str, services: ServicesDep) -> Response:
    services.store.delete(session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/sessions/{session_id}/conversation", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(session: SessionDep) -> Response:
    """Start the conversation over; the documents stay."""
    session.conversation.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
