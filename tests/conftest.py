"""Shared fixtures: real documents from ../shared/data and the real models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports torch or transformers: stay offline, share two cores politely.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

pytest_plugins = ["tests.plugins.vllm_server"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
PDFS = SHARED_DATA / "pdfs"
COVIDQA = SHARED_DATA / "covidqa" / "200423_covidQA.json"


@pytest.fixture(scope="session")
def pdf_dir() -> Path:
    assert PDFS.is_dir(), f"shared test data missing at {PDFS}"
    return PDFS


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
