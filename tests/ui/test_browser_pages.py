"""In real Chromium: a source card or a citation badge opens the cited page beside the
answer; a pasted text is checked against an uploaded deck, sentence by sentence.

The API is real (embedder, FAISS, pypdf, python-pptx, verification, PDFium); its generator
is scripted to give the P100 answer (checking a text asks no model), so the tests are about
the page, not the model (the whole stack with the real vLLM is test_browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support import GPU_QUESTION
from tests.ui.conftest import ApiServer
from tests.ui.deck import SESSION_LIMIT, write_deck
from tests.ui.test_browser import (
    INGEST_TIMEOUT_MS,
    add_files,
    chromium_page,
    document_list,
    screenshot,
    streamlit_ui,
)
from ui.check_text import SUBMIT, TITLE

pytestmark = pytest.mark.browser

ANSWER_TIMEOUT_MS = 300_000  # retrieval, verification and the page renders on shared cores
CHECK_TIMEOUT_MS = 300_000  # a search per sentence and the verifier, on shared cores


@pytest.fixture(scope="module")
def ui_url(real_api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with streamlit_ui(real_api_server.url, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture()
def page(ui_url: str, tmp_path: Path) -> Iterator[Page]:
    with chromium_page(ui_url, tmp_path) as opened:
        yield opened


def highlight_in_view(view: Any) -> bool:
    """The view's anchor (its first highlight rectangle) lies inside the view's scroll box
    and the window: the browser scrolled both to it."""
    return bool(
        view.evaluate(
            """view => {
                const box = view.querySelector('.pgpt-page-scroll').getBoundingClientRect();
                const mark = view.querySelector('[id^="pgpt-page-"]').getBoundingClientRect();
                return mark.top >= box.top && mark.bottom <= box.bottom
                    && mark.top >= 0 && mark.bottom <= window.innerHeight;
            }"""
        )
    )


def test_a_source_card_and_a_badge_open_the_cited_page_at_the_highlight(
    page: Page, pdf_dir: Path, tmp_path: Path
) -> None:
    add_files(page, pdf_dir / "attention-is-all-you-need.pdf")
    expect(document_list(page).get_by_text("15 pages")).to_be_visible(timeout=INGEST_TIMEOUT_MS)
    page.get_by_test_id("stChatInputTextArea").fill(GPU_QUESTION)
    page.keyboard.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    expect(answer.get_by_text("passages given to the model")).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS
    )
    view = answer.locator("div[data-pgpt='page-view'][data-n='1']")
    expect(view).to_be_hidden()
    expect(answer.get_by_text("Select a source card or a numbered badge")).to_be_visible()

    # Clicking the cited source card shows its page, scrolled to the highlighted words.
    card = answer.locator("a.pgpt-card[href$='-1']").first
    card.click()
    expect(view).to_be_visible()
    image = view.locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1000
    assert "highlighted" in (image.get_attribute("alt") or "")
    assert highlight_in_view(view), "the page was not scrolled to the highlight"
    # Beside the answer.
    written = answer.locator("div[data-pgpt='answer']")
    answer_box, view_box = written.bounding_box(), view.bounding_box()
    assert answer_box and view_box and view_box["x"] > answer_box["x"] + answer_box["width"]
    page.screenshot(path=tmp_path / "page-view.png")

    # Close it; then the [1] badge in the answer, reached by keyboard, opens it again.
    view.get_by_role("link", name="Close").click()
    expect(view).to_be_hidden()
    badge = written.locator("a[href$='-1']")
    badge.focus()
    page.keyboard.press("Enter")
    expect(view).to_be_visible()
    assert highlight_in_view(view)

    # On a narrow screen the page comes under the answer.
    page.set_viewport_size({"width": 480, "height": 1000})
    answer_box, view_box = written.bounding_box(), view.bounding_box()
    assert answer_box and view_box and view_box["y"] >= answer_box["y"] + answer_box["height"]
    screenshot(page, tmp_path, "page-view-narrow")


def test_a_pasted_text_shows_each_sentence_with_its_label_and_backing(
    page: Page, tmp_path: Path
) -> None:
    add_files(page, write_deck(tmp_path / "lecture.pptx"))
    expect(document_list(page).get_by_text("lecture.pptx")).to_be_visible(timeout=INGEST_TIMEOUT_MS)

    page.get_by_text(TITLE).click()
    stated = SESSION_LIMIT
    invented = "A session is kept for 90 days after its last question."
    page.get_by_label("Text to check").fill(f"{stated} {invented}")
    page.get_by_role("button", name=SUBMIT).click()

    sentences = page.locator("div[data-pgpt='checked-sentence']")
    expect(sentences).to_have_count(2, timeout=CHECK_TIMEOUT_MS)
    screenshot(page, tmp_path, "checked-text", height=1600)
    labels = sentences.locator("[data-pgpt='support-label']").all_inner_texts()
    assert labels == ["supported", "unsupported"]
    assert [s.get_attribute("data-support") for s in sentences.all()] == labels
    first, second = sentences.all()
    assert stated in first.inner_text()
    backing = first.inner_text()
    # The passage and span that back it: the file, its slide, the words (highlighted).
    assert "lecture.pptx" in backing and "slide 3" in backing
    assert "30 minutes without activity" in first.locator("mark").first.inner_text()
    # Its number stands on that slide; the invented one neither stands nor follows.
    assert first.locator("li[data-backing='stands']").first.inner_text().startswith("30 ")
    assert second.locator("li[data-backing='unbacked']").first.inner_text().startswith("90 ")
