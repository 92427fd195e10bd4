"""Shared fixtures: the real documents (checksummed, via `make data`), the real embedder and
its fake.

``embedder`` is the real bundled model: a test that asks for it is marked ``embedder`` (its
point is the model's vectors). Tests of our own logic (routes, UI, limits, isolation,
chunking) take ``fake_embedder`` (rag.fakes.HashingEmbedder) instead: the bundled tokenizer's
token counts, vectors from hashed words, no model to load or run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rag.fakes import HashingEmbedder

# Before anything imports torch or transformers: stay offline, share two cores politely.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

pytest_plugins = ["tests.plugins.vllm_server"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pdf_dir() -> Path:
    """The verified PDFs (see benchmarks/data.py); a clear 'run make data' error otherwise."""
    from benchmarks import data

    for entry in data.load_manifest():
        if entry.name.startswith("pdfs/"):
            data.path(entry.name)
    return data.root() / "pdfs"


@pytest.fixture(scope="session")
def attention_pdf(pdf_dir: Path) -> bytes:
    return (pdf_dir / "attention-is-all-you-need.pdf").read_bytes()


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from core.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def embedder(settings):  # type: ignore[no-untyped-def]
    """The real bundled all-MiniLM-L6-v2, loaded once per run."""
    from rag.embedding import make_embedder

    return make_embedder(settings)


@pytest.fixture(scope="session")
def fake_embedder() -> HashingEmbedder:
    """The hashing stand-in for tests where the model's vectors are not the point."""
    from rag.fakes import HashingEmbedder

    return HashingEmbedder()


@pytest.hookimpl(tryfirst=True)  # before `-m "not embedder"` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "embedder" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.embedder)
