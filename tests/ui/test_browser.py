"""The whole stack in a real headless Chromium: Streamlit UI -> REST API -> embedded vLLM.

Chromium is Debian's (`make setup-browser`); Playwright only drives it. The model is
tiny, so these tests check what the page shows, not how good the answer is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from core.settings import AnswerMode
from rag.answer import EVIDENCE_INTRO
from serving.app import create_app
from tests.conftest import PROJECT_ROOT
from tests.support import FOLLOW_UP_QUESTION, GPU_QUESTION, free_port
from tests.ui.conftest import ApiServer, serving, ui_settings
from tests.ui.deck import write_deck
from ui.sidebar import ANSWER_MODES

pytestmark = [pytest.mark.browser, pytest.mark.vllm]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INGEST_TIMEOUT_MS = 300_000  # the real embedder shares two CPU cores with vLLM
ANSWER_TIMEOUT_MS = 600_000
UI_START_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def browser_api(vllm_server: Any, embedder: Any) -> Iterator[ApiServer]:
    """The real API, answering with the real embedded vLLM server."""
    # Short answers (the UI starts at the server's setting): the model runs on a shared CPU.
    settings = ui_settings(vllm_url=vllm_server.url, answer_max_tokens=96)
    with serving(create_app(settings, embedder=embedder)) as server:
        yield server


@pytest.fixture(scope="module")
def ui_url(browser_api: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port, talking to the API above."""
    with streamlit_ui(browser_api.url, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@contextmanager
def streamlit_ui(api_url: str, log_dir: Path) -> Iterator[str]:
    """The Streamlit page as `pgpt up` runs it, on a free port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_dir / "streamlit.log"
    env = {**os.environ, "PGPT_API_URL": api_url}
    env.pop("PGPT_API_KEY", None)
    argv = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_healthy(f"{url}/_stcore/health", process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"streamlit exited:\n{log_path.read_text()}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(
        f"streamlit did not start in {UI_START_TIMEOUT_S} s:\n{log_path.read_text()}"
    )


@pytest.fixture()
def page(ui_url: str, tmp_path: Path) -> Iterator[Page]:
    """A fresh Chromium profile and a fresh page (so a fresh UI session) per test."""
    with chromium_page(ui_url, tmp_path) as opened:
        yield opened


@contextmanager
def chromium_page(ui_url: str, tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        context: BrowserContext = playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "chromium-profile",
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(ui_url)
            expect(page.get_by_text("Add documents to begin")).to_be_visible(timeout=60_000)
            yield page
        finally:
            context.close()


def sidebar(page: Page) -> Any:
    return page.get_by_test_id("stSidebar")


def document_list(page: Page) -> Any:
    """The list of added documents (not the status lines shown while adding them)."""
    return page.locator(".st-key-document-list")


def add_files(page: Page, *paths: Path) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(list(paths))


def screenshot(page: Page, tmp_path: Path, name: str, *, height: int = 1000) -> None:
    """Streamlit scrolls inside the page, so a tall window is what shows everything."""
    page.set_viewport_size({"width": 1400, "height": height})
    page.screenshot(path=tmp_path / f"{name}.png")
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_upload_ask_and_read_the_streamed_answer_with_its_sources(
    page: Page, pdf_dir: Path, tmp_path: Path
) -> None:
    add_files(page, pdf_dir / "attention-is-all-you-need.pdf")
    documents = document_list(page)
    expect(documents.get_by_text("15 pages")).to_be_visible(timeout=INGEST_TIMEOUT_MS)
    expect(documents.get_by_text("attention-is-all-you-need.pdf")).to_be_visible()
    screenshot(page, tmp_path, "1-uploaded")

    # `auto` would quote this one without the model; here the model's answer streams.
    page.get_by_text(ANSWER_MODES[AnswerMode.GENERATE]).click()
    page.get_by_test_id("stChatInputTextArea").fill(GPU_QUESTION)
    page.keyboard.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    # The cursor shows only while tokens arrive: the answer is streamed, not dropped in.
    expect(answer.get_by_text("▌")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    screenshot(page, tmp_path, "2-streaming")
    expect(answer.get_by_text("passages given to the model")).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS
    )
    expect(answer.get_by_text("▌")).to_have_count(0)
    screenshot(page, tmp_path, "3-answered", height=3200)

    written = answer.locator("div[data-pgpt='answer']")
    assert written.inner_text().strip()  # some answer text appeared
    cards = answer.locator("div[id^='pgpt-source-']")
    expect(cards.first).to_be_visible()
    card_text = " ".join(cards.all_inner_texts())
    assert "attention-is-all-you-need.pdf" in card_text
    assert re.search(r"\bpages? (?:7|8)\b|pages \d+–(?:7|8)\b", card_text), card_text


def test_a_bad_file_shows_its_own_error_and_the_good_one_is_kept(
    page: Page, pdf_dir: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "x.pdf"
    junk.write_bytes(os.urandom(4096))
    add_files(page, pdf_dir / "crazyones.pdf", junk, pdf_dir / "images-with-little-text.pdf")

    errors = sidebar(page).get_by_test_id("stAlert")
    expect(errors.filter(has_text="x.pdf")).to_be_visible(timeout=INGEST_TIMEOUT_MS)
    expect(errors.filter(has_text="images-with-little-text.pdf")).to_be_visible()
    expect(document_list(page).get_by_text("crazyones.pdf")).to_be_visible()
    expect(sidebar(page).get_by_text("Added 1 of 3 files")).to_be_visible()
    screenshot(page, tmp_path, "bad-file")


def test_forget_my_documents_empties_the_list(page: Page, pdf_dir: Path, tmp_path: Path) -> None:
    add_files(page, pdf_dir / "crazyones.pdf")
    documents = document_list(page)
    expect(documents.get_by_text("crazyones.pdf")).to_be_visible(timeout=INGEST_TIMEOUT_MS)

    sidebar(page).get_by_role("button", name="Forget my documents").click()

    expect(documents.get_by_text("No documents yet.")).to_be_visible(timeout=30_000)
    expect(sidebar(page).get_by_text("crazyones.pdf")).to_have_count(0)
    expect(page.get_by_text("deleted from the server's memory")).to_be_visible()
    screenshot(page, tmp_path, "forgotten")


# Issue #35's three questions, asked in the browser as a new user would, and what the
# sentence each reply leads with must hold.
THREE_QUESTIONS = [
    ("How many GPUs were used to train the big model?", r"\b(?:8|eight)\b[^.]*\bGPUs\b"),
    (FOLLOW_UP_QUESTION, r"\b3\.5 days\b"),
    ("Are documents uploaded to PrivateGPT++ stored on the server?", r"\bnot stored on the server"),
]
EVIDENCE_PAGE = re.compile(
    r"^\s*\d+\s*\((?:attention-is-all-you-need\.pdf|lecture\.pptx), (?:page|slide) \d+\)"
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def reply_outcome(reply: Any) -> tuple[str, str]:
    """What the reply shows (a verified answer, quotes or unverified evidence), checked
    against how the page labels it, and the sentence it leads with."""
    written = reply.locator("div[data-pgpt='answer']").inner_text().strip()
    body = written.removeprefix(EVIDENCE_INTRO).strip()
    lead = SENTENCE_END.split(body, maxsplit=1)[0]
    if written.startswith(EVIDENCE_INTRO):
        expect(reply.get_by_text("Unverified evidence", exact=True)).to_be_visible()
        assert EVIDENCE_PAGE.match(body[len(lead) :]), f"no page for the evidence: {written!r}"
        return "evidence", lead
    if reply.get_by_text("Quoted from your documents").count():
        return "quoted", lead
    expect(reply.get_by_text("is backed by the passages it cites")).to_be_visible()
    return "verified answer", lead


def test_the_three_questions_lead_with_their_answer_in_the_default_mode(
    page: Page, pdf_dir: Path, tmp_path: Path
) -> None:
    deck = write_deck(tmp_path / "lecture.pptx")
    add_files(page, pdf_dir / "attention-is-all-you-need.pdf", deck)
    documents = document_list(page)
    expect(documents.get_by_text("15 pages")).to_be_visible(timeout=INGEST_TIMEOUT_MS)
    expect(documents.get_by_text("lecture.pptx")).to_be_visible(timeout=INGEST_TIMEOUT_MS)

    outcomes = []
    for index, (question, holds) in enumerate(THREE_QUESTIONS):
        page.get_by_test_id("stChatInputTextArea").fill(question)
        page.keyboard.press("Enter")
        reply = page.get_by_test_id("stChatMessage").nth(2 * index + 1)
        expect(reply.get_by_text("passages given to the model")).to_be_visible(
            timeout=ANSWER_TIMEOUT_MS
        )
        kind, lead = reply_outcome(reply)
        outcomes.append((question, kind, lead, bool(re.search(holds, lead))))
        print(f"{question} -> {kind}: {lead}")  # the measured outcome, shown with pytest -s
    screenshot(page, tmp_path, "three-questions", height=4000)
    assert all(found for *_, found in outcomes), outcomes
