"""What the page remembers for one browser session, and the server session behind it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import streamlit as st

from core.api_models import (
    ClientConfig,
    DocumentOut,
    Health,
    NumberedPassage,
    QueryResult,
    SessionCreated,
    VerifyResult,
)
from core.settings import ApiConnection
from ui.client import (
    ApiClient,
    ApiError,
    ApiUnreachableError,
    PageView,
    SessionExpiredError,
    UploadOutcome,
)

# In the page's address while it has a server session. Only a marker: the session id itself
# would be a secret in browser history. A reloaded page or a restarted UI (whose memory of
# the session is gone) finds the marker and tells the user why the documents are gone.
SESSION_MARKER = "session"
HEALTH_MAX_AGE_S = 10.0


@dataclass
class Turn:
    """One question and what came back; ``finished`` stays False if the run was stopped."""

    question: str
    answer: str = ""
    result: QueryResult | None = None
    sources: list[NumberedPassage] = field(default_factory=list)  # when there is no result
    error: str | None = None
    error_code: str | None = None
    finished: bool = False
    # Passage number -> its page (or why it could not be shown), fetched once answered.
    pages: dict[int, PageView | str] = field(default_factory=dict)

    @property
    def passages(self) -> list[NumberedPassage]:
        """Every passage the answer was given (or the ones found when it failed)."""
        return self.result.sources if self.result is not None else self.sources

    def forget_pages_of(self, document_id: str) -> None:
        """Drop the page views of a document that was removed: no copy stays in the page."""
        removed = {p.n for p in self.passages if p.document_id == document_id}
        self.pages = {n: view for n, view in self.pages.items() if n not in removed}


@dataclass
class Notice:
    kind: Literal["success", "warning"]
    text: str


@dataclass
class UiState:
    session: SessionCreated | None = None
    ttl_s: float = 0.0
    expires_at: datetime | None = None
    documents: list[DocumentOut] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    upload_report: list[UploadOutcome] = field(default_factory=list)
    uploader_generation: int = 0
    handled_file_ids: set[str] = field(default_factory=set)
    notice: Notice | None = None
    health: Health | None = None
    health_checked_at: float = 0.0
    config: ClientConfig | None = None
    text_check: VerifyResult | None = None  # the last text checked against the documents

    def forget_text_check_of(self, document_id: str) -> None:
        """Drop the text check when it shows passages of a removed document."""
        check = self.text_check
        if check is not None and any(p.document_id == document_id for p in check.sources):
            self.text_check = None

    def clear(self, notice: Notice | None = None) -> None:
        """Forget the session, documents and chat; the next uploader starts empty."""
        generation = self.uploader_generation + 1
        st.query_params.pop(SESSION_MARKER, None)
        self.__dict__.update(UiState().__dict__)
        self.uploader_generation = generation
        self.notice = notice


def ui_state() -> UiState:
    """This browser session's state: server session, documents, chat."""
    if "ui" not in st.session_state:
        st.session_state.ui = UiState()
    state: UiState = st.session_state.ui
    return state


def api_client(connection: ApiConnection) -> ApiClient:
    """This browser session's API client (one connection pool per browser session)."""
    if "api" not in st.session_state:
        key = connection.api_key.get_secret_value() if connection.api_key else None
        st.session_state.api = ApiClient(connection.api_url, key)
    client: ApiClient = st.session_state.api
    return client


def health(client: ApiClient, ui: UiState) -> Health:
    """/healthz, re-read at most every few seconds (every click reruns the page)."""
    if ui.health is None or time.monotonic() - ui.health_checked_at > HEALTH_MAX_AGE_S:
        ui.health = client.health()
        ui.health_checked_at = time.monotonic()
    return ui.health


def server_config(client: ApiClient, ui: UiState) -> ClientConfig:
    """The server's limits, formats and answer settings, read once per browser session."""
    if ui.config is None:
        ui.config = client.config()
    return ui.config


def session_id(client: ApiClient, ui: UiState) -> str:
    """The server session of this browser session, created on first use."""
    if ui.session is None:
        requested = datetime.now(UTC)
        ui.session = client.create_session()
        ui.ttl_s = max(1.0, (ui.session.expires_at - requested).total_seconds())
        st.query_params[SESSION_MARKER] = "1"
    touch(ui)
    return ui.session.session_id


def notice_lost_session(ui: UiState, config: ClientConfig) -> None:
    """A page that had a session, but whose state starts empty: the UI or the API restarted."""
    if ui.session is not None or SESSION_MARKER not in st.query_params:
        return
    del st.query_params[SESSION_MARKER]
    minutes = max(1, round(config.session_ttl_s / 60))
    ui.notice = Notice(
        "warning",
        "This page lost its session: the server or the page was restarted. Documents are held "
        "only in the server's memory, so add them again to ask about them (a session nobody "
        f"uses is deleted after {minutes} min).",
    )


def touch(ui: UiState) -> None:
    """The server extends a session's life on each request; mirror that for the notice."""
    ui.expires_at = datetime.now(UTC) + timedelta(seconds=ui.ttl_s)


def session_lost(ui: UiState) -> None:
    """Forget a session the server no longer has; the next request starts a new one."""
    if ui.documents:
        minutes = round(ui.ttl_s / 60)
        ui.notice = Notice(
            "warning",
            f"Your previous session ended (after {minutes} min without activity, or the server "
            "restarted), and its documents were deleted from the server's memory. "
            "Add them again to keep asking about them.",
        )
    ui.session = None
    ui.expires_at = None
    ui.documents = []
    ui.text_check = None
    st.query_params.pop(SESSION_MARKER, None)


def check_expiry(client: ApiClient, ui: UiState) -> None:
    """Once the session should have expired, ask the server (the clocks may differ)."""
    if ui.session is None or ui.expires_at is None or ui.expires_at > datetime.now(UTC):
        return
    try:
        ui.documents = client.documents(ui.session.session_id)
        touch(ui)
    except SessionExpiredError:
        session_lost(ui)
    except (ApiError, ApiUnreachableError):
        pass  # the health check on the page explains an unreachable API
