"""The sidebar's documents: the uploader, the list of documents, and forgetting them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core.api_models import ClientConfig, UploadProgress
from ui.client import (
    ApiClient,
    ApiError,
    ApiUnreachableError,
    SessionExpiredError,
    UploadOutcome,
)
from ui.render import escape_markdown, ocr_progress_label, size_label
from ui.state import Notice, UiState, session_id, session_lost, touch

PASSWORD_CODES = {"password_required", "wrong_password"}


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
    ui.forget_text_check_of(document_id)
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


# --- the section ------------------------------------------------------------------------


def documents_section(client: ApiClient, ui: UiState, config: ClientConfig) -> None:
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
        type=config.accepted_extensions,
        accept_multiple_files=True,
        key=f"uploader-{ui.uploader_generation}",
        help=f"{config.accepted_types}. Scanned pages and images are read by OCR. "
        "Drop several files at once.",
        max_upload_size=max(1, math.ceil(config.max_upload_mb)),
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
    privacy_note(ui, config)
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


def privacy_note(ui: UiState, config: ClientConfig) -> None:
    if ui.session is not None and ui.expires_at is not None:
        minutes = max(1, round(ui.ttl_s / 60))
        at = local_time(ui.expires_at)
        when = f"after {minutes} min without activity (at {at} if you stay idle)"
    else:
        when = f"after {max(1, round(config.session_ttl_s / 60))} min without activity"
    st.caption(
        ":material/lock: Documents are held in the server's memory only, never written to disk, "
        f"and deleted {when} or when you click *Forget my documents*."
    )
