"""PrivateGPT++ in the browser: add documents, ask questions, read answers with their sources.

The Streamlit page: a thin client of the REST API (serving/app.py). Every document and
every answer lives behind the API; this page only sends requests and shows the results.
`pgpt up` runs this file (ui.PAGE_PATH); `streamlit run app.py` next to `pgpt serve` too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core.api_models import (
    AnswerKind,
    GeneratorStatus,
    Health,
    NumberedPassage,
    QueryResult,
    Support,
    TokenChunk,
    UploadProgress,
)
from core.errors import ConfigError
from core.settings import AnswerMode, Settings, load_settings
from ui.client import (
    ApiClient,
    ApiError,
    ApiUnreachableError,
    SessionExpiredError,
    UploadOutcome,
)
from ui.export import conversation_markdown
from ui.render import (
    PAGE_VIEW_CSS,
    answer_html,
    card_anchor,
    escape_markdown,
    ocr_progress_label,
    page_anchor,
    page_span,
    pages_html,
    passage_highlights,
    size_label,
    source_card_html,
)
from ui.state import (
    Notice,
    Turn,
    UiState,
    api_client,
    check_expiry,
    notice_lost_session,
    session_id,
    session_lost,
    touch,
    ui_state,
)

ACCEPTED_TYPES = [
    "pdf",
    "png",
    "jpg",
    "jpeg",
    "tif",
    "tiff",
    "webp",
    "docx",
    "pptx",
    "xlsx",
    "csv",
    "html",
    "htm",
    "txt",
    "md",
    "markdown",
]
UPLOAD_HELP = (
    "PDF (scanned ones too: pages without text are read by OCR), images (PNG, JPEG, TIFF, "
    "WebP, read by OCR), Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, web pages "
    "(.html), plain text or Markdown. Drop several files at once."
)
HEALTH_MAX_AGE_S = 10.0
STREAM_REFRESH_S = 0.05  # redraw the growing answer at most this often
PASSWORD_CODES = {"password_required", "wrong_password"}
# Rendered wider than its half-width column: sharp on high-density screens and when zoomed.
PAGE_WIDTH_PX = 1000


def local_time(moment: datetime) -> str:
    """Clock time in the browser's time zone when known."""
    try:
        zone = ZoneInfo(st.context.timezone) if st.context.timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    label = moment.astimezone(zone).strftime("%H:%M")
    return label if zone is not UTC else f"{label} UTC"


# --- actions (button callbacks run before the page is drawn) ----------------------------


def remove_document(client: ApiClient, ui: UiState, document_id: str, filename: str) -> None:
    if ui.session is None:
        return
    try:
        client.remove_document(ui.session.session_id, document_id)
        touch(ui)
    except SessionExpiredError:
        session_lost(ui)
        return
    except (ApiError, ApiUnreachableError) as exc:
        ui.notice = Notice("warning", f"Could not remove {filename}: {exc.message}")
        return
    ui.documents = [d for d in ui.documents if d.document_id != document_id]
    for turn in ui.turns:
        turn.forget_pages_of(document_id)
    st.toast(f"Removed {filename}")


def forget_everything(client: ApiClient, ui: UiState) -> None:
    """Delete the server session (documents, index) and clear this page."""
    if ui.session is not None:
        try:
            client.delete_session(ui.session.session_id)
        except SessionExpiredError:
            pass  # already gone: that is what was asked
        except (ApiError, ApiUnreachableError) as exc:
            ui.notice = Notice(
                "warning", f"Could not delete your documents on the server: {exc.message}"
            )
            return
    ui.clear(
        Notice(
            "success",
            "Done: your documents were deleted from the server's memory and this chat was cleared.",
        )
    )


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


def dismiss_upload_report(ui: UiState) -> None:
    ui.upload_report = []


# --- uploads ---------------------------------------------------------------------------


def ingest(
    client: ApiClient, ui: UiState, file: UploadedFile, password: str | None
) -> UploadOutcome:
    """Send one file on its own request, with its own status line."""
    shown = escape_markdown(file.name)
    with st.status(f"Reading and indexing **{shown}**…", expanded=False) as status:

        def show_progress(update: UploadProgress) -> None:
            # Only scans report pages: "reading scanned pages by OCR: 3 of 12".
            if update.pages_total:
                label = ocr_progress_label(update.pages_done, update.pages_total)
                status.update(label=f"**{shown}** · {label}…")

        outcome = upload_one(
            client, ui, file.name, file.getvalue(), file.type, password, show_progress
        )
        if outcome.document is not None:
            status.update(label=f"**{shown}** · {size_label(outcome.document)}", state="complete")
        else:
            status.write(outcome.error or "")
            status.update(label=f"**{shown}** could not be added", state="error")
    return outcome


def upload_one(
    client: ApiClient,
    ui: UiState,
    filename: str,
    data: bytes,
    media_type: str,
    password: str | None,
    on_progress: Callable[[UploadProgress], None],
) -> UploadOutcome:
    for attempt in range(2):
        try:
            outcome = client.upload_with_progress(
                session_id(client, ui),
                filename,
                data,
                on_progress,
                password=password,
                media_type=media_type,
            )
        except SessionExpiredError:
            session_lost(ui)
            if attempt == 0:
                continue  # once more, in a fresh session
            return UploadOutcome(filename, error="The server keeps losing the session; try again.")
        except ApiUnreachableError as exc:
            return UploadOutcome(filename, error=exc.message, code="unreachable")
        except ApiError as exc:  # e.g. no room for another session
            return UploadOutcome(filename, error=exc.message, code=exc.code)
        if outcome.document is not None:
            ui.documents.append(outcome.document)
        return outcome
    raise AssertionError("unreachable")


def forget_uploaded_files(files: Sequence[UploadedFile]) -> None:
    """Drop the bytes Streamlit keeps for the uploader: the API has them now."""
    ctx = get_script_run_ctx()
    if ctx is None or not isinstance(ctx.uploaded_file_mgr, MemoryUploadedFileManager):
        return
    for file in files:
        ctx.uploaded_file_mgr.remove_file(ctx.session_id, file.file_id)


def documents_section(client: ApiClient, ui: UiState, settings: Settings) -> None:
    st.header("Your documents", divider="blue")
    with st.expander("Encrypted PDF?", icon=":material/key:"):
        password = st.text_input(
            "PDF password",
            type="password",
            key="pdf_password",
            help="Used for the encrypted PDFs you add next. Leave empty for other files.",
        )
    uploaded = st.file_uploader(
        "Add documents",
        type=ACCEPTED_TYPES,
        accept_multiple_files=True,
        key=f"uploader-{ui.uploader_generation}",
        help=UPLOAD_HELP,
        max_upload_size=max(1, math.ceil(settings.max_upload_mb)),
    )
    new_files = [f for f in uploaded if f.file_id not in ui.handled_file_ids]
    if new_files:
        if not ui.handled_file_ids:  # a new batch, not the rest of an interrupted one
            ui.upload_report = []
        ui.notice = None
        # One request per file, so a refused file stops nothing.
        progress = st.progress(0.0, text=f"Adding {len(new_files)} file(s)…")
        for done, file in enumerate(new_files, 1):
            ui.upload_report.append(ingest(client, ui, file, password))
            ui.handled_file_ids.add(file.file_id)
            progress.progress(done / len(new_files), text=f"{done} of {len(new_files)} file(s)")
        forget_uploaded_files(uploaded)
        ui.handled_file_ids = set()
        ui.uploader_generation += 1  # a fresh, empty uploader
        st.rerun()

    upload_report(ui)
    document_list(client, ui)
    privacy_note(ui, settings)
    if ui.session is not None or ui.turns:
        st.button(
            "Forget my documents",
            icon=":material/delete_forever:",
            on_click=forget_everything,
            args=(client, ui),
            width="stretch",
            help="Delete your documents from the server's memory now and clear this chat.",
        )


def upload_report(ui: UiState) -> None:
    failed = [o for o in ui.upload_report if o.document is None]
    added = len(ui.upload_report) - len(failed)
    if not failed:
        return
    if added:
        st.caption(f"Added {added} of {len(ui.upload_report)} files.")
    for outcome in failed:
        hint = ""
        if outcome.code in PASSWORD_CODES:
            hint = " Enter the password under *Encrypted PDF?* above, then add the file again."
        st.error(
            f"**{escape_markdown(outcome.filename)}** could not be added: "
            f"{escape_markdown(outcome.error or 'unknown error')}{hint}",
            icon=":material/error:",
        )
    st.button("Dismiss", on_click=dismiss_upload_report, args=(ui,), key="dismiss-report")


def document_list(client: ApiClient, ui: UiState) -> None:
    box = st.container(key="document-list")  # (the key is also a CSS class for browser tests)
    if not ui.documents:
        box.caption("No documents yet.")
        return
    for doc in ui.documents:
        name_column, button_column = box.columns([6, 1], vertical_alignment="center")
        with name_column:
            st.markdown(
                f":material/description: **{escape_markdown(doc.filename)}**  \n"
                f":gray[{size_label(doc)}]"
            )
        button_column.button(
            "",
            icon=":material/close:",
            key=f"remove-{doc.document_id}",
            help=f"Remove {doc.filename}",
            on_click=remove_document,
            args=(client, ui, doc.document_id, doc.filename),
        )


def privacy_note(ui: UiState, settings: Settings) -> None:
    if ui.session is not None and ui.expires_at is not None:
        minutes = max(1, round(ui.ttl_s / 60))
        at = local_time(ui.expires_at)
        when = f"after {minutes} min without activity (at {at} if you stay idle)"
    else:
        when = f"after {max(1, round(settings.session_ttl_s / 60))} min without activity"
    st.caption(
        ":material/lock: Documents are held in the server's memory only, never written to disk, "
        f"and deleted {when} or when you click *Forget my documents*."
    )


# --- sidebar: answer settings and model ------------------------------------------------

AnswerPrefs = tuple[int, int, float, AnswerMode]  # passages, max tokens, temperature, mode
ANSWER_MODES = {
    AnswerMode.AUTO: "Checked (confident quotes, else the model's backed sentences)",
    AnswerMode.EXTRACT: "Quotes only (no model)",
    AnswerMode.GENERATE: "Model's answer as written",
}


def answer_settings(settings: Settings) -> AnswerPrefs:
    st.header("Answers", divider="gray")
    mode = st.radio(
        "Answer mode",
        options=list(ANSWER_MODES),
        index=list(ANSWER_MODES).index(settings.answer_mode),
        format_func=ANSWER_MODES.__getitem__,
        key="answer_mode",
        help="Checked answers show only sentences backed by your documents; quotes are the "
        "documents' own sentences and need no model.",
    )
    top_k = st.slider(
        "Passages per question",
        min_value=1,
        max_value=20,
        value=min(settings.top_k, 20),
        key="top_k",
        help="How many passages are retrieved and given to the model.",
    )
    max_tokens = st.slider(
        "Answer length (max tokens)",
        min_value=32,
        max_value=2048,
        value=min(max(settings.answer_max_tokens, 32), 2048),
        step=32,
        key="max_tokens",
    )
    temperature = st.slider(
        "Temperature",
        min_value=0.0,
        max_value=1.5,
        value=min(settings.temperature, 1.5),
        step=0.05,
        key="temperature",
        help="0 gives the most literal answers; higher values vary the wording.",
    )
    return top_k, max_tokens, temperature, mode


def health(client: ApiClient, ui: UiState) -> Health:
    """/healthz, re-read at most every few seconds (every click reruns the page)."""
    if ui.health is None or time.monotonic() - ui.health_checked_at > HEALTH_MAX_AGE_S:
        ui.health = client.health()
        ui.health_checked_at = time.monotonic()
    return ui.health


GENERATOR_DOWN = {
    GeneratorStatus.STARTING: (
        "The language model is starting: answers work in a minute or two. "
        "Until then, questions show the passages that match best."
    ),
    GeneratorStatus.RESTARTING: (
        "The language model stopped and is being restarted: answers work again in a minute "
        "or two. Your documents and this conversation are kept; until then, questions show "
        "the passages that match best."
    ),
    GeneratorStatus.UNAVAILABLE: (
        "The language model is not reachable, so there are no written answers for now; "
        "questions show the passages that match best."
    ),
}


def model_status(status: Health) -> None:
    generator = status.generator
    st.header("Model", divider="gray")
    if generator.status is GeneratorStatus.READY:
        context = generator.context_length
        context_label = f"  \n:gray[{context:,}-token context]" if context else ""
        st.markdown(
            f":green-badge[:material/check: ready] "
            f"**{escape_markdown(generator.model or 'unknown')}**{context_label}"
        )
    elif generator.status in (GeneratorStatus.STARTING, GeneratorStatus.RESTARTING):
        st.markdown(
            f":orange-badge[:material/hourglass_top: {generator.status}] answers work in a minute"
        )
    else:
        st.markdown(":red-badge[:material/power_off: not reachable] passages only")
    st.caption(f"Search: {status.embedder.model} on {status.embedder.device}")


# --- chat -------------------------------------------------------------------------------


def ask(client: ApiClient, ui: UiState, turn: Turn, index: int, prefs: AnswerPrefs) -> None:
    """Stream one answer into the page, then show its sources and their pages beside it."""
    top_k, max_tokens, temperature, mode = prefs
    answer_column, pages_column = st.columns(2, gap="medium")
    slot = answer_column.empty()
    slot.markdown(":gray[*Searching your documents…*]")
    shown_at = 0.0
    try:
        for event in client.ask(
            session_id(client, ui),
            turn.question,
            top_k=top_k,
            max_tokens=max_tokens,
            temperature=temperature,
            answer_mode=mode,
        ):
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


def render_pages(turn: Turn, index: int) -> None:
    if turn.pages:
        st.html(pages_html(index, turn.passages, turn.pages))


def render_turn(turn: Turn, index: int) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(turn.question))
    with st.chat_message("assistant"):
        answer_column, pages_column = st.columns(2, gap="medium")
        with answer_column:
            render_answer(turn, index, st.empty())
        with pages_column:
            render_pages(turn, index)


def render_answer(turn: Turn, index: int, slot: DeltaGenerator) -> None:
    result = turn.result
    sources = result.sources if result else turn.sources
    if turn.answer:
        slot.html(answer_html(turn.answer, sources, index, on_pages=turn.pages.keys()))
    else:
        slot.empty()
    if result is not None:
        seconds = result.timings.total_ms / 1000
        searched = result.standalone_question
        if searched and searched != turn.question:
            st.caption(f":material/search: Searched as: {escape_markdown(searched)}")
        quoted = result.answer_kind is AnswerKind.QUOTED
        st.caption(f"{'quoted from your documents' if quoted else result.model} · {seconds:.1f} s")
        if quoted:
            st.caption(
                ":material/format_quote: **Quoted from your documents**: these are the "
                "documents' own sentences, not a written answer."
            )
        if result.grounded:
            support_check(result)
            removed_note(result)
        elif result.not_found_reason:
            st.info(
                "Nothing in your documents matches this question. "
                f"{escape_markdown(result.not_found_reason)}",
                icon=":material/search_off:",
            )
        else:  # unanswered
            unanswered_note(result)
        cited_sources(turn, result, index)
        return
    if turn.error_code == "generator_unavailable" or (turn.error and turn.sources):
        st.warning(
            f"**The language model is not available right now**, so there is no answer. "
            f"{escape_markdown(turn.error or '')}",
            icon=":material/power_off:",
        )
        if turn.sources:
            st.markdown("**The passages that best match your question:**")
            for passage in turn.sources:
                source_card(passage, turn, index)
        return
    if turn.error:
        st.error(escape_markdown(turn.error), icon=":material/error:")
    elif not turn.finished:
        st.caption("Stopped before the answer was complete.")


def unanswered_note(result: QueryResult) -> None:
    """Why no answer is shown although passages were found, with the model's unbacked draft."""
    lines = [
        "Passages about this were found, but nothing in them backs an answer to the question, "
        "so none is shown. Read the passages below."
    ]
    lines += [
        f"- The model's draft, not backed: “{escape_markdown(c.text)}”" for c in result.claims
    ]
    st.info("\n".join(lines), icon=":material/search_off:")


def removed_note(result: QueryResult) -> None:
    """A compact note on the model's sentences left out as not supported, expandable."""
    removed = [c for c in result.claims if not c.shown]
    if not removed:
        return
    with st.expander(f":material/filter_alt: {len(removed)} sentence(s) removed as not backed"):
        for claim in removed:
            label = "Weakly backed" if claim.support is Support.WEAK else "Not backed"
            st.markdown(f"- {label}: “{escape_markdown(claim.text)}”")


def support_check(result: QueryResult) -> None:
    """How well each sentence of the answer is backed by the passages it cites."""
    claims = [c for c in result.claims if c.shown]
    doubtful = [c for c in claims if c.support is not Support.SUPPORTED]
    if not claims:
        return
    if not doubtful:
        st.caption(
            f":material/verified: Each sentence ({len(claims)}) is backed by the passages it cites."
        )
        return
    backed = len(claims) - len(doubtful)
    lines = [f"**{backed} of {len(claims)} sentences are backed by the passages they cite.**"]
    for claim in doubtful:
        label = "Weakly backed" if claim.support is Support.WEAK else "Not backed"
        lines.append(f"- {label}: “{escape_markdown(claim.text)}”")
    st.warning("\n".join(lines), icon=":material/fact_check:")


def cited_sources(turn: Turn, result: QueryResult, index: int) -> None:
    sources = result.sources
    if not sources:
        st.info("No passage of your documents matched this question.", icon=":material/search_off:")
        return
    cited = result.citations
    if cited:
        st.markdown(f"**Sources** · {len(cited)} cited")
        for passage in cited:
            source_card(passage, turn, index)
    elif result.grounded:  # (an ungrounded answer was already explained)
        st.info(
            "The answer cites no passage: check it against the passages below.",
            icon=":material/help:",
        )
    if result.invalid_citations:
        numbers = ", ".join(f"[{n}]" for n in result.invalid_citations)
        st.caption(f":material/warning: The model cited {numbers}, which it was not given.")
    with st.expander(f"All {len(sources)} passages given to the model", expanded=not cited):
        for passage in sources:
            source_card(passage, turn, index, anchor=not cited)


def source_card(passage: NumberedPassage, turn: Turn, index: int, *, anchor: bool = True) -> None:
    spans = passage_highlights(passage, turn.question, turn.answer)
    page_link = page_anchor(index, passage.n) if passage.n in turn.pages else None
    st.html(
        source_card_html(
            passage, spans, card_anchor(index, passage.n) if anchor else None, page_link
        )
    )


def chat(client: ApiClient, ui: UiState, prefs: AnswerPrefs) -> None:
    # Read first (the box is pinned to the bottom anyway), so the hints know a question came.
    question = st.chat_input(
        "Ask a question about your documents" if ui.documents else "Add a document to ask about it",
        disabled=not ui.documents,
        submit_mode="stop",
        max_chars=4000,
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
                "**Add documents to begin.** Drop PDF, text or Markdown files into the sidebar "
                "(several at once). Then ask a question: each answer cites the passages it "
                "comes from, shown right below it.",
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
            ask(client, ui, turn, index, prefs)


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


# --- page -------------------------------------------------------------------------------


def main() -> None:
    # Wide: an answer and the page it cites sit side by side.
    st.set_page_config(
        page_title="PrivateGPT++",
        page_icon="🔒",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    try:
        settings = load_settings()
    except ConfigError as exc:
        st.error(exc.message)
        st.stop()
    ui = ui_state()
    client = api_client(settings)
    notice_lost_session(ui, settings)
    check_expiry(client, ui)

    st.html(PAGE_VIEW_CSS)
    st.title(":material/lock: PrivateGPT++")
    st.caption("Answers from your own documents, with the passages they come from.")
    try:
        status = health(client, ui)
    except (ApiError, ApiUnreachableError) as exc:
        st.error(exc.message, icon=":material/cloud_off:")
        st.button("Try again")
        st.stop()
        return  # st.stop() ends the run; outside a script run (tests) it does not raise

    with st.sidebar:
        documents_section(client, ui, settings)
        prefs = answer_settings(settings)
        model_status(status)

    state = status.generator.status
    if state is not GeneratorStatus.READY:
        st.warning(GENERATOR_DOWN[state], icon=":material/power_off:")
    if ui.notice is not None:
        if ui.notice.kind == "success":
            st.success(escape_markdown(ui.notice.text), icon=":material/check_circle:")
        else:
            st.warning(escape_markdown(ui.notice.text), icon=":material/info:")
    chat(client, ui, prefs)


if __name__ == "__main__":  # run by Streamlit as a script (pgpt up)
    main()
