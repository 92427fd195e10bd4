"""Two headers for a scaled-out deployment (docs/deploy.md, "Past one machine").

``X-PGPT-Replica`` on every answer names this api replica (``PGPT_REPLICA_ID``), so the
routing in front of it can be checked. ``X-Session-ID`` on every call to vLLM made for a
session carries a keyed hash of the session id: vllm-router's ``consistent_hash`` policy
then keeps a conversation on one vLLM replica (and its prefix cache) without the id, the
session's only secret, leaving this process. The key is random per process: a session
never leaves the replica that created it, so no other process needs the same hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPLICA_HEADER = "X-PGPT-Replica"
SESSION_HEADER = "X-Session-ID"  # the header vllm-router's consistent_hash reads
_KEY = secrets.token_bytes(32)

# The hash of the session the current request is for; read by serving/vllm_client.py.
session_affinity: ContextVar[str | None] = ContextVar("session_affinity", default=None)


def affinity_key(session_id: str) -> str:
    """HMAC-SHA256 of the id under this process's key (128 bits, hex)."""
    return hmac.new(_KEY, session_id.encode(), hashlib.sha256).hexdigest()[:32]


def session_id_of(path: str) -> str | None:
    """The ``<id>`` of ``/v1/sessions/<id>/...``."""
    parts = path.split("/", 4)
    if len(parts) > 3 and parts[1] == "v1" and parts[2] == "sessions" and parts[3]:
        return parts[3]
    return None


class ReplicaMiddleware:
    """Sets the session's affinity for the request and names the replica in the answer."""

    def __init__(self, app: ASGIApp, replica_id: str | None) -> None:
        self.app = app
        self.replica_id = replica_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start" and self.replica_id:
                MutableHeaders(scope=message).append(REPLICA_HEADER, self.replica_id)
            await send(message)

        session_id = session_id_of(scope["path"])
        token = session_affinity.set(affinity_key(session_id) if session_id else None)
        try:
            await self.app(scope, receive, send_named)
        finally:
            session_affinity.reset(token)
