"""Check a text: paste a draft, a summary or an answer written elsewhere, and see each of
its sentences labelled against the documents (POST /v1/sessions/{id}/verify), with the
passage and words that back it and how its numbers are backed."""

from __future__ import annotations

import streamlit as st

from core.api_models import VerifyRequest
from ui.backing import checked_text_html, support_summary
from ui.client import ApiClient, ApiError, ApiUnreachableError, SessionExpiredError
from ui.limits import max_length
from ui.render import escape_markdown
from ui.state import UiState, session_id, session_lost

TITLE = "Check a text against your documents"
SUBMIT = "Check the text"


def check_text_section(client: ApiClient, ui: UiState) -> None:
    """The box and the last check's result, in an expander that opens once there is one."""
    with st.expander(f":material/fact_check: {TITLE}", expanded=ui.text_check is not None):
        st.caption(
            "Paste a draft, a summary or an answer from elsewhere: each sentence is searched "
            "for in your documents and labelled supported, weak or unsupported, with the "
            "passage that backs it and how its numbers are backed."
        )
        with st.form("check-text", border=False):
            text = st.text_area(
                "Text to check",
                key="check_text",
                max_chars=max_length(VerifyRequest, "text"),
                height=140,
                placeholder="The big model was trained on 8 GPUs for 3.5 days.",
            )
            submitted = st.form_submit_button(
                SUBMIT, icon=":material/fact_check:", disabled=not ui.documents
            )
        if not ui.documents:
            st.caption("Add a document to check a text against it.")
        if submitted:
            check(client, ui, text)
        show_check(ui)


def check(client: ApiClient, ui: UiState, text: str) -> None:
    """Send the text to be checked; the result (or why there is none) goes to the page."""
    text = text.strip()
    ui.text_check = None
    if not text:
        st.warning("Paste a text to check first.", icon=":material/edit_note:")
        return
    try:
        with st.spinner("Checking each sentence against your documents…"):
            ui.text_check = client.verify(session_id(client, ui), VerifyRequest(text=text))
    except SessionExpiredError:
        session_lost(ui)
        st.rerun()  # the notice and the empty document list explain it
    except (ApiError, ApiUnreachableError) as exc:
        st.error(f"The text could not be checked: {escape_markdown(exc.message)}")


def show_check(ui: UiState) -> None:
    result = ui.text_check
    if result is None:
        return
    if not result.sentences:
        st.info(
            "No passage of your documents matches this text, so none of it could be checked.",
            icon=":material/search_off:",
        )
        return
    st.markdown(f"**{support_summary(result)}**")
    st.html(checked_text_html(result))
