"""The Streamlit page driven by AppTest against the real API (fake embedder; FAISS, PDFs).

The embedder and generator are fakes so the page logic is quick to check; test_browser.py runs the
whole stack, real vLLM included, in a real browser.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.settings import AnswerMode
from ingest.formats import accepted_extensions
from rag.fakes import ScriptedGenerator
from rag.generation import GeneratorStatus
from serving.app import create_app
from tests.conftest import PROJECT_ROOT
from tests.support import FOLLOW_UP_QUESTION as FOLLOW_UP
from tests.support import GPU_QUESTION, free_port
from tests.ui.conftest import ApiServer, serving, ui_settings
from ui import PAGE_PATH
from ui.client import PageImage
from ui.render import escape_markdown, pages_label
from ui.state import UiState

APP = str(PROJECT_ROOT / "app.py")
NOTES = ("notes.md", b"# Field notes\n\nThe crazy ones see things differently.\n", "text/markdown")
UPLOAD_TIMEOUT = 300  # the real embedder on two shared CPU cores


def start_app(monkeypatch: pytest.MonkeyPatch, api_url: str, api_key: str | None = None) -> AppTest:
    monkeypatch.setenv("PGPT_API_URL", api_url)
    if api_key is None:
        monkeypatch.delenv("PGPT_API_KEY", raising=False)
    else:
        monkeypatch.setenv("PGPT_API_KEY", api_key)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture()
def app(api_server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return start_app(monkeypatch, api_server.url)


@pytest.fixture()
def crazyones(pdf_dir: Path) -> tuple[str, bytes, str]:
    return ("crazyones.pdf", (pdf_dir / "crazyones.pdf").read_bytes(), "application/pdf")


def state(at: AppTest) -> UiState:
    ui: UiState = at.session_state["ui"]
    return ui


def upload(at: AppTest, *files: tuple[str, bytes, str]) -> None:
    at.file_uploader[0].set_value(list(files))
    at.run(timeout=UPLOAD_TIMEOUT)
    assert not at.exception, at.exception


def ask(at: AppTest, question: str) -> None:
    at.chat_input[0].set_value(question)
    at.run(timeout=120)
    assert not at.exception, at.exception


def listed(at: AppTest) -> list[str]:
    return [d.filename for d in state(at).documents]


def server_documents(api_server: ApiServer, session_id: str) -> list[str]:
    response = httpx.get(f"{api_server.url}/v1/sessions/{session_id}/documents")
    response.raise_for_status()
    return [d["filename"] for d in response.json()["documents"]]


def button(at: AppTest, label_part: str) -> Any:
    return next(b for b in at.button if label_part in b.label)


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_first_visit_explains_what_to_do(app: AppTest) -> None:
    assert "Add documents to begin" in texts(app.info)
    assert app.chat_input[0].disabled
    sidebar = texts(app.sidebar.markdown)
    assert "scripted" in sidebar and "ready" in sidebar
    assert "never written to disk" in texts(app.sidebar.caption)
    assert state(app).session is None  # created on first use, not on page load


def test_the_page_also_runs_from_the_ui_package(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `pgpt up` runs, wherever the package is installed.
    monkeypatch.setenv("PGPT_API_URL", api_server.url)
    at = AppTest.from_file(str(PAGE_PATH), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "Add documents to begin" in texts(at.info)


def test_the_controls_come_from_the_api_not_the_ui_environment(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The UI process's own environment is not the server's configuration.
    monkeypatch.setenv("PGPT_ANSWER_MAX_TOKENS", "96")
    monkeypatch.setenv("PGPT_MAX_UPLOAD_MB", "50")
    monkeypatch.setenv("PGPT_CHUNK_OVERLAP_TOKENS", "999")  # invalid, and no concern of the UI
    at = start_app(monkeypatch, api_server.url)
    sliders = {s.key: (s.min, s.max, s.value) for s in at.slider}
    # The ranges are QueryRequest's, the starting values the server's settings.
    assert sliders == {
        "top_k": (1, 20, 5),
        "max_tokens": (16, 4096, 384),
        "temperature": (0.0, 2.0, 0.1),
    }
    uploader = at.file_uploader[0].proto
    assert (list(uploader.type), uploader.max_upload_size_mb) == (list(accepted_extensions()), 5)


def test_each_file_gets_its_result_and_a_bad_one_its_own_error(
    app: AppTest, api_server: ApiServer, crazyones: tuple[str, bytes, str]
) -> None:
    upload(app, crazyones, ("x.pdf", os.urandom(3000), "application/pdf"), NOTES)

    assert listed(app) == ["crazyones.pdf", "notes.md"]
    errors = texts(app.sidebar.error)
    assert "x\\.pdf" in errors and "could not be added" in errors
    assert "Added 2 of 3 files" in texts(app.sidebar.caption)
    documents = texts(app.sidebar.markdown)
    assert "crazyones\\.pdf" in documents and "1 page · " in documents
    session = state(app).session
    assert session is not None
    assert server_documents(api_server, session.session_id) == ["crazyones.pdf", "notes.md"]
    # The uploader is a fresh, empty one: the bytes are not kept around.
    assert app.file_uploader[0].value == []
    assert state(app).uploader_generation == 1
    assert not app.chat_input[0].disabled
    note = texts(app.sidebar.caption)
    assert "memory only" in note and "if you stay idle" in note

    button(app, "Dismiss").click()
    app.run()
    assert not app.sidebar.error


def test_answer_streams_with_cited_source_cards(
    app: AppTest, attention_pdf: bytes, scripted_generator: ScriptedGenerator
) -> None:
    upload(app, ("attention-is-all-you-need.pdf", attention_pdf, "application/pdf"))
    assert listed(app) == ["attention-is-all-you-need.pdf"]
    app.slider(key="top_k").set_value(3)
    # `auto` would quote this one without the model; the model's answer streams here.
    app.radio(key="answer_mode").set_value(AnswerMode.GENERATE)
    ask(app, GPU_QUESTION)

    user, assistant = app.chat_message
    assert user.name == "user" and GPU_QUESTION in texts(user.markdown)
    rendered = [h.value for h in assistant.html]
    answer, pages = rendered[0], rendered[-1]
    cards = [h for h in rendered if 'id="pgpt-source-' in h]
    assert "8 P100 GPUs" in answer
    assert 'href="#pgpt-page-0-1"' in answer  # the [1] marker opens its page
    assert "attention-is-all-you-need.pdf" in answer  # ... and names it on hover
    cited = cards[0]
    assert 'id="pgpt-source-0-1"' in cited
    assert 'href="#pgpt-page-0-1"' in cited  # the card opens it too
    assert "attention-is-all-you-need.pdf" in cited
    assert "page 7" in cited or "page 8" in cited
    marked = cited.split("<mark", 1)[1].split("</mark>", 1)[0]
    assert "P100" in marked  # the span that backs the answer
    assert "Sources" in texts(assistant.markdown)
    assert "scripted" in texts(assistant.caption)
    [expander] = [e for e in assistant.expander if e.label.startswith("All")]
    assert expander.label == "All 3 passages given to the model"
    assert len(expander.html) == 3

    turn = state(app).turns[0]
    assert turn.finished and turn.result is not None
    assert len(turn.result.sources) == 3

    # Beside the answer, each passage's page: the cited one a PNG with an anchor (the link
    # target) over the highlighted words.
    assert set(turn.pages) == {1, 2, 3}
    page = turn.pages[1]
    assert isinstance(page, PageImage) and page.info.page in (7, 8) and page.info.highlights
    view = pages.split('data-pgpt="page-view" data-n="1"', 1)[1].split('data-pgpt="page-view"')[0]
    assert 'src="data:image/png;base64,' in view and 'id="pgpt-page-0-1"' in view

    # The history survives reruns, and the next question adds to it.
    app.run()
    assert len(app.chat_message) == 2
    ask(app, "What is the BLEU score of the big model?")
    assert len(app.chat_message) == 4
    assert state(app).turns[1].finished and state(app).turns[1].result is not None


def test_generator_down_shows_a_clear_message_and_the_passages(
    api_server: ApiServer,
    monkeypatch: pytest.MonkeyPatch,
    scripted_generator: ScriptedGenerator,
    crazyones: tuple[str, bytes, str],
) -> None:
    scripted_generator.available = False
    try:
        at = start_app(monkeypatch, api_server.url)
        assert "not reachable" in texts(at.sidebar.markdown)
        assert "no written answers" in texts(at.main.warning)
        upload(at, crazyones)
        at.radio(key="answer_mode").set_value(AnswerMode.GENERATE)  # needs the model
        ask(at, "Who are the crazy ones?")
    finally:
        scripted_generator.available = True

    assistant = at.chat_message[1]
    assert "not available right now" in texts(assistant.warning)
    cards = [h.value for h in assistant.html]
    assert cards and "crazyones.pdf" in cards[0]
    assert "<mark" in cards[0]
    assert state(at).turns[0].sources


def test_an_unbacked_draft_is_not_shown_as_the_answer(
    app: AppTest, scripted_generator: ScriptedGenerator, crazyones: tuple[str, bytes, str]
) -> None:
    draft = "The crazy ones were trained on the moon."
    upload(app, crazyones)
    app.radio(key="answer_mode").set_value(AnswerMode.GENERATE)
    scripted_generator.answer = draft
    try:
        ask(app, "Who are the crazy ones?")
    finally:
        scripted_generator.answer = ScriptedGenerator().answer
    assistant = app.chat_message[1]
    # The passages' closest sentence leads, cited, labelled as unverified evidence.
    answer_html = assistant.html[0].value
    assert "Not checked as an answer" in answer_html and "crazyones.pdf" in answer_html
    assert "**Unverified evidence**" in texts(assistant.warning)
    assert f"not backed: “{escape_markdown(draft)}”" in texts(assistant.warning)


def test_a_restarting_model_is_explained_and_the_conversation_kept(
    app: AppTest,
    api_server: ApiServer,
    scripted_generator: ScriptedGenerator,
    crazyones: tuple[str, bytes, str],
) -> None:
    upload(app, crazyones)
    ask(app, "Who are the crazy ones?")
    scripted_generator.available = False
    scripted_generator.down_status = GeneratorStatus.RESTARTING
    try:
        state(app).health = None  # re-read /healthz now, not in a few seconds
        app.run()
    finally:
        scripted_generator.available = True
        scripted_generator.down_status = GeneratorStatus.UNAVAILABLE
    assert "being restarted" in texts(app.main.warning)
    assert "restarting" in texts(app.sidebar.markdown)
    assert [turn.question for turn in state(app).turns] == ["Who are the crazy ones?"]


def test_a_page_that_lost_its_session_says_why(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPT_API_URL", api_server.url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["session"] = "1"  # the page had a session before the UI restarted
    at.run()
    assert "lost its session" in texts(at.warning)
    assert "session" not in at.query_params


def test_remove_a_document(
    app: AppTest, api_server: ApiServer, crazyones: tuple[str, bytes, str]
) -> None:
    upload(app, crazyones, NOTES)
    notes = next(d for d in state(app).documents if d.filename == "notes.md")

    app.button(key=f"remove-{notes.document_id}").click()
    app.run()

    assert listed(app) == ["crazyones.pdf"]
    session = state(app).session
    assert session is not None
    assert server_documents(api_server, session.session_id) == ["crazyones.pdf"]


def test_the_conversation_downloads_as_markdown_and_starts_over(
    real_api_server: ApiServer,
    attention_pdf: bytes,
    scripted_generator: ScriptedGenerator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both turns' answers are backed by the verifier: the real embedder's vectors.
    app = start_app(monkeypatch, real_api_server.url)
    # One scripted answer that holds for both turns, so both have citations to export.
    both = "The big model was trained on 8 P100 GPUs for 3.5 days [1]."
    monkeypatch.setattr(scripted_generator, "answer", both)
    downloads: list[tuple[bytes | str, str | None]] = []
    add = MediaFileManager.add

    def recording_add(
        manager: MediaFileManager,
        data: bytes | str,
        mimetype: str,
        coordinates: str,
        file_name: str | None = None,
        is_for_static_download: bool = False,
    ) -> str:
        if is_for_static_download:  # exactly the bytes the browser would download
            downloads.append((data, file_name))
        return add(manager, data, mimetype, coordinates, file_name, is_for_static_download)

    monkeypatch.setattr(MediaFileManager, "add", recording_add)
    upload(app, ("attention-is-all-you-need.pdf", attention_pdf, "application/pdf"))
    app.slider(key="top_k").set_value(3)
    ask(app, GPU_QUESTION)
    ask(app, FOLLOW_UP)
    searched = f"{FOLLOW_UP} (P100 GPUs, train, big model)"
    assert f"Searched as: {searched}" in texts(app.chat_message[3].caption).replace("\\", "")

    app.run()
    data, file_name = downloads[-1]
    markdown = data.decode() if isinstance(data, bytes) else data
    assert file_name == "conversation.md"
    turns = state(app).turns
    assert len(turns) == 2
    for turn in turns:
        assert turn.result is not None and turn.result.citations
        assert turn.question in markdown and turn.result.answer in markdown
        for cited in turn.result.citations:
            assert f"- [{cited.n}] {cited.filename}, {pages_label(cited)}: “" in markdown
    assert f"*Searched as: {searched}*" in markdown

    button(app, "New conversation").click()
    app.run()
    assert state(app).turns == [] and not app.chat_message
    assert listed(app) == ["attention-is-all-you-need.pdf"]  # the documents stay
    ask(app, FOLLOW_UP)
    result = state(app).turns[0].result
    assert result is not None and result.standalone_question == FOLLOW_UP  # nothing to refer to


def test_forget_my_documents_deletes_the_server_session_and_clears_the_page(
    app: AppTest, api_server: ApiServer, crazyones: tuple[str, bytes, str]
) -> None:
    upload(app, crazyones)
    ask(app, "Who are the crazy ones?")
    session = state(app).session
    assert session is not None and app.chat_message

    button(app, "Forget my documents").click()
    app.run()

    assert not api_server.session_exists(session.session_id)
    ui = state(app)
    assert ui.session is None and ui.documents == [] and ui.turns == []
    assert not app.chat_message
    assert "deleted from the server" in texts(app.success)
    assert app.chat_input[0].disabled


def test_an_expired_session_is_replaced_and_explained(
    app: AppTest, api_server: ApiServer, crazyones: tuple[str, bytes, str]
) -> None:
    upload(app, crazyones)
    old = state(app).session
    assert old is not None
    httpx.delete(f"{api_server.url}/v1/sessions/{old.session_id}").raise_for_status()

    ask(app, "Who are the crazy ones?")
    assert "previous session ended" in texts(app.warning)
    assert listed(app) == []
    assert "question was not asked" in texts(app.chat_message[1].error)

    upload(app, NOTES)
    new = state(app).session
    assert new is not None and new.session_id != old.session_id
    assert server_documents(api_server, new.session_id) == ["notes.md"]


def test_the_page_notices_an_expired_session_by_itself(
    app: AppTest, api_server: ApiServer, crazyones: tuple[str, bytes, str]
) -> None:
    upload(app, crazyones)
    old = state(app).session
    assert old is not None

    # Due by our clock, but the server still has it: nothing is lost.
    state(app).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    app.run()
    assert listed(app) == ["crazyones.pdf"] and state(app).session == old
    expires_at = state(app).expires_at
    assert expires_at is not None and expires_at > datetime.now(UTC)

    # Gone on the server too: the page says so before anyone asks.
    httpx.delete(f"{api_server.url}/v1/sessions/{old.session_id}").raise_for_status()
    state(app).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    app.run()
    assert listed(app) == [] and state(app).session is None
    assert "previous session ended" in texts(app.warning)
    assert app.chat_input[0].disabled


def test_a_file_over_the_size_limit_is_refused_with_its_name(app: AppTest) -> None:
    upload(app, ("big.txt", b"a" * (6 * 1024 * 1024), "text/plain"), NOTES)  # the limit is 5 MB
    assert listed(app) == ["notes.md"]
    errors = texts(app.sidebar.error)
    assert "big\\.txt" in errors and "could not be added" in errors


def test_an_encrypted_pdf_needs_its_password(app: AppTest, pdf_dir: Path) -> None:
    locked = (
        "encrypted.pdf",
        (pdf_dir / "encrypted-password-openpassword.pdf").read_bytes(),
        "application/pdf",
    )
    upload(app, locked)
    assert listed(app) == []
    assert "Enter the password" in texts(app.sidebar.error)

    app.text_input(key="pdf_password").input("openpassword")
    upload(app, locked)
    assert listed(app) == ["encrypted.pdf"]


def test_the_api_key_is_sent(
    embedder: Any,
    scripted_generator: ScriptedGenerator,
    monkeypatch: pytest.MonkeyPatch,
    crazyones: tuple[str, bytes, str],
) -> None:
    app = create_app(ui_settings(api_key="s3cret"), embedder=embedder, generator=scripted_generator)
    with serving(app) as server:
        at = start_app(monkeypatch, server.url, api_key="s3cret")
        upload(at, crazyones)
        assert listed(at) == ["crazyones.pdf"]

        # A wrong key is told at once, before any file is sent.
        wrong = start_app(monkeypatch, server.url, api_key="guess")
        assert "PGPT_API_KEY is not the one the API was started with" in texts(wrong.error)
        assert not wrong.file_uploader


def test_an_unreachable_api_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    at = start_app(monkeypatch, f"http://127.0.0.1:{free_port()}")
    message = texts(at.error)
    assert "Cannot reach the PrivateGPT++ API" in message and "pgpt serve" in message
