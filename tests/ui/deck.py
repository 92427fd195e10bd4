"""A small lecture deck about PrivateGPT++ built with python-pptx, as a user would upload
one beside a paper: the browser tests ask it about privacy and check texts against it."""

from __future__ import annotations

from pathlib import Path

PRIVACY_STATEMENT = "The uploaded documents are not stored on the server."
SESSION_LIMIT = "A session is deleted after 30 minutes without activity."
SLIDES = [
    ("PrivateGPT++", "Private question answering over your own documents. Lecture 4."),
    (
        "What it does",
        "Upload PDF, Word, PowerPoint or Excel files and ask questions about them. "
        "Every answer cites the passages it comes from, with their pages.",
    ),
    (
        "Privacy",
        f"{PRIVACY_STATEMENT} They are parsed and indexed in memory only. {SESSION_LIMIT}",
    ),
    (
        "How it works",
        "The text is split into passages and embedded. FAISS finds the passages closest to "
        "the question. A small language model writes the answer, and each sentence is "
        "checked against its passage.",
    ),
    ("Questions?", "Try it on your own reading list."),
]


def write_deck(path: Path) -> Path:
    """The deck as a .pptx file at ``path`` (a test's tmp dir)."""
    from pptx import Presentation

    presentation = Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for title, body in SLIDES:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.save(str(path))
    return path
