"""The chat: the question box, each question's streamed answer, and the conversation's
actions (start over, download)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import streamlit as st

from core.api_models import AnswerOptions, QueryRequest, QueryResult, TokenChunk
from ui.answer_view import render_answer, render_pages
from ui.client import ApiClient, ApiError, ApiUnreachableError, SessionExpiredError
from ui.export import conversation_markdown
from ui.limits import max_length
from ui.render import answer_html, escape_markdown, page_span
from ui.state import Notice, Turn, UiState, session_id, session_lost, touch

STREAM_REFRESH_S = 0.05  # redraw the growing answer at most this often
# Rendered wider than its half-width column: sharp on high-density screens and when zoomed.
PAGE_WIDTH_PX = 1000


def new_conversation(client: ApiClient, ui: UiState) -> None:
    """Clear the chat and the server's conversation; the documents stay."""
    if ui.session is not None:
        try:
            client.clear_conversation(ui.session.session_id)
            touch(ui)
        except SessionExpiredError:
            session_lost(ui)
        except (ApiError, ApiUnreachableError) as exc:
            ui.notice = Notice("warning", f"Could not start a new conversation: {exc.message}")
            return
    ui.turns = []
    ui.notice = None


def ask(client: ApiClient, ui: UiState, turn: Turn, index: int, options: AnswerOptions) -> None:
    """Stream one answer into the page, then show its sources and their pages beside it."""
    answer_column, pages_column = st.columns(2, gap="medium")
    slot = answer_column.empty()
    slot.markdown(":gray[*Searching your documents…*]")
    shown_at = 0.0
    request = QueryRequest(question=turn.question, **options.model_dump())
    try:
        for event in client.ask(session_id(client, ui), request):
            if isinstance(event, TokenChunk):
                turn.answer += event.text
                if time.monotonic() - shown_at >= STREAM_REFRESH_S:
                    slot.html(answer_html(turn.answer, [], index, cursor=True))
                    shown_at = time.monotonic()
            elif isinstance(event, QueryResult):
                turn.result = event
                turn.answer = event.answer
            else:  # the answer failed; the passages found anyway come with the error
                turn.error = event.error.message
                turn.error_code = event.error.code
                turn.sources = event.sources
    except SessionExpiredError:
        session_lost(ui)
        turn.error = "Your session had ended, so this question was not asked."
        turn.finished = True
        st.rerun()  # redraw the document list and the notice for the new state
    except (ApiError, ApiUnreachableError) as exc:
        turn.error = exc.message
    turn.finished = True
    with pages_column:
        fetch_pages(client, ui, turn)
        render_pages(turn, index)
    with answer_column:
        render_answer(turn, index, slot)


def fetch_pages(client: ApiClient, ui: UiState, turn: Turn) -> None:
    """Each passage's page, with the words that back the answer (or the passage) marked."""
    if ui.session is None or not turn.passages:
        return
    with st.spinner("Drawing the pages of the sources…"):
        for passage in turn.passages:
            page, span = page_span(passage)
            try:
                turn.pages[passage.n] = client.page(
                    ui.session.session_id,
                    passage.document_id,
                    page,
                    span=span,
                    width=PAGE_WIDTH_PX,
                )
            except (ApiError, ApiUnreachableError) as exc:
                turn.pages[passage.n] = f"This page cannot be shown: {exc.message}"


def render_turn(turn: Turn, index: int) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(turn.question))
    with st.chat_message("assistant"):
        answer_column, pages_column = st.columns(2, gap="medium")
        with answer_column:
            render_answer(turn, index, st.empty())
        with pages_column:
            render_pages(turn, index)


def chat(client: ApiClient, ui: UiState, options: AnswerOptions) -> None:
    # Read first (the box is pinned to the bottom anyway), so the hints know a question came.
    question = st.chat_input(
        "Ask a question about your documents" if ui.documents else "Add a document to ask about it",
        disabled=not ui.documents,
        submit_mode="stop",
        max_chars=max_length(QueryRequest, "question"),
    )
    question = question.strip() if question else None
    if not ui.turns and not question:
        if ui.documents:
            count = len(ui.documents)
            st.info(
                f"**{count} document{'s' if count > 1 else ''} ready.** Ask a question below; "
                "the answer cites its sources, and the passages appear right under it.",
                icon=":material/forum:",
            )
        else:
            st.info(
                "**Add documents to begin.** Drop your files into the sidebar (several at "
                "once). Then ask a question: each answer cites the passages it comes from, "
                "shown right below it.",
                icon=":material/upload_file:",
            )
    if ui.turns:
        conversation_actions(client, ui)
    for index, turn in enumerate(ui.turns):
        render_turn(turn, index)
    if question:
        ui.notice = None
        turn = Turn(question=question)
        ui.turns.append(turn)
        index = len(ui.turns) - 1
        with st.chat_message("user"):
            st.markdown(escape_markdown(turn.question))
        with st.chat_message("assistant"):
            ask(client, ui, turn, index, options)


def conversation_actions(client: ApiClient, ui: UiState) -> None:
    new_column, download_column = st.columns(2)
    new_column.button(
        "New conversation",
        icon=":material/add_comment:",
        on_click=new_conversation,
        args=(client, ui),
        width="stretch",
        help="Clear this chat; follow-up questions stop referring to it. Documents stay.",
    )
    download_column.download_button(
        "Download conversation",
        data=conversation_markdown(ui.turns, [d.filename for d in ui.documents], datetime.now(UTC)),
        file_name="conversation.md",
        mime="text/markdown",
        icon=":material/download:",
        on_click="ignore",
        width="stretch",
        help="Every question and answer, with the file and page of each citation (Markdown).",
    )
