"""PrivateGPT++ in the browser: add documents, ask questions, read answers with their sources.

The Streamlit page: a thin client of the REST API (serving/). Every document and every
answer lives behind the API; this page only sends requests and shows the results, and of
the configuration reads only where the API is (the rest comes from GET /v1/config).
`pgpt up` runs this file (ui.PAGE_PATH); `streamlit run app.py` next to `pgpt serve` too.
The regions: ui/documents.py and ui/sidebar.py (the sidebar), ui/check_text.py (checking a
pasted text) and ui/chat.py (the chat).
"""

from __future__ import annotations

import streamlit as st

from core.api_models import GeneratorStatus
from core.errors import ConfigError
from core.settings import load_api_connection
from ui.chat import chat
from ui.check_text import check_text_section
from ui.client import ApiError, ApiUnreachableError
from ui.documents import documents_section
from ui.render import PAGE_VIEW_CSS, escape_markdown
from ui.sidebar import GENERATOR_DOWN, answer_settings, model_status
from ui.state import (
    UiState,
    api_client,
    check_expiry,
    health,
    notice_lost_session,
    server_config,
    ui_state,
)

WRONG_KEY = "unauthorized"


def main() -> None:
    # Wide: an answer and the page it cites sit side by side.
    st.set_page_config(
        page_title="PrivateGPT++",
        page_icon="🔒",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    try:
        connection = load_api_connection()
    except ConfigError as exc:
        st.error(exc.message)
        st.stop()
    ui = ui_state()
    client = api_client(connection)

    st.html(PAGE_VIEW_CSS)
    st.title(":material/lock: PrivateGPT++")
    st.caption("Answers from your own documents, with the passages they come from.")
    try:
        status = health(client, ui)
        config = server_config(client, ui)
    except (ApiError, ApiUnreachableError) as exc:
        hint = ""
        if isinstance(exc, ApiError) and exc.code == WRONG_KEY:
            hint = " This UI's PGPT_API_KEY is not the one the API was started with."
        st.error(exc.message + hint, icon=":material/cloud_off:")
        st.button("Try again")
        st.stop()
        return  # st.stop() ends the run; outside a script run (tests) it does not raise
    notice_lost_session(ui, config)
    check_expiry(client, ui)

    with st.sidebar:
        documents_section(client, ui, config)
        options = answer_settings(config, status.auto_order)
        model_status(status)

    state = status.generator.status
    if state is not GeneratorStatus.READY:
        st.warning(GENERATOR_DOWN[state], icon=":material/power_off:")
    show_notice(ui)
    check_text_section(client, ui)
    chat(client, ui, options)


def show_notice(ui: UiState) -> None:
    if ui.notice is None:
        return
    if ui.notice.kind == "success":
        st.success(escape_markdown(ui.notice.text), icon=":material/check_circle:")
    else:
        st.warning(escape_markdown(ui.notice.text), icon=":material/info:")


if __name__ == "__main__":  # run by Streamlit as a script (pgpt up)
    main()
