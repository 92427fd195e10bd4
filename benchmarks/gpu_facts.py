"""What the GPU acceptance run (benchmarks/gpu_check.py) finds out about the machine: the GPU,
the FAISS index the product's sessions get, and vLLM (its start-up log and its server).

vLLM's log is the only place that says which attention backend it chose. On a GPU, vLLM 0.32
logs ``Using AttentionBackendEnum.FLASH_ATTN backend.`` when `--attention-backend FLASH_ATTN`
is given (docker-compose.yml; docs/deploy.md, "FlashAttention, required"), or ``Using
FLASH_ATTN attention backend out of potential backends: [...]`` when it chose by itself. Its
engine line (``Initializing a V1 LLM engine (v0.32.0) with config: model=..., dtype=...,
device_config=cuda, ...``) gives the version, model, dtype and device. Request logging is off
everywhere (serving/launcher.py, docker-compose.yml), so the log holds no prompt text.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

import httpx
import numpy as np

from core.errors import ConfigError
from core.settings import Settings
from rag.embedding import Embedder
from serving.wiring import make_store

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ENGINE = re.compile(r"Initializing a V1 LLM engine \(v(?P<version>[^)]+)\) with config: (?P<c>.*)")
_SERVER_VERSION = re.compile(r"vLLM (?:API )?server version (?P<version>[^\s,]+)")
# "Using AttentionBackendEnum.FLASH_ATTN backend." / "Using FLASH_ATTN attention backend out
# of ..." / "Using CPU_MLA backend."; not "Using TRITON MLA prefill backend" nor MoE lines.
_BACKEND = re.compile(
    r"Using (?:AttentionBackendEnum\.)?(?P<name>[A-Z][A-Z0-9_]+) (?:attention )?backend\b"
)
_KV_CACHE = re.compile(r"[\w+ ]*KV cache size: [\d,]+ tokens")  # "GPU KV cache size: ..."
_CONCURRENCY = re.compile(r"Maximum concurrency for [\d,]+ tokens per request: [\d.]+x")
FLASH_ATTENTION = "FLASH_ATTN"
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class VLLMLog:
    """What vLLM's own start-up log says; None where it says nothing of it."""

    version: str | None
    device: str | None  # the engine's device_config: "cuda", "cpu"
    model: str | None
    dtype: str | None  # as logged: "torch.bfloat16"
    attention_backend: str | None  # "FLASH_ATTN", as named in the log
    backend_line: str | None  # that line, as logged
    kv_cache: str | None  # "GPU KV cache size: 334,000 tokens"
    concurrency: str | None  # "Maximum concurrency for 8,192 tokens per request: 40.8x"


def read_vllm_log(text: str) -> VLLMLog:
    """The last start-up's facts (a restarted server logs its start-up again)."""
    version = device = model = dtype = backend = backend_line = kv = concurrency = None
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).strip()
        if engine := _ENGINE.search(line):
            config = engine.group("c")
            version = engine.group("version")
            device = _config_value(config, r"device_config=(\w+)")
            model = _config_value(config, r"\bmodel='([^']*)'")
            dtype = _config_value(config, r"\bdtype=([\w.]+)")
        elif (server := _SERVER_VERSION.search(line)) and version is None:
            version = server.group("version")
        if used := _BACKEND.search(line):
            backend, backend_line = used.group("name"), line
        if found := _KV_CACHE.search(line):
            kv = found.group().strip()
        if found := _CONCURRENCY.search(line):
            concurrency = found.group()
    return VLLMLog(version, device, model, dtype, backend, backend_line, kv, concurrency)


def _config_value(config: str, pattern: str) -> str | None:
    found = re.search(pattern, config)
    return found.group(1) if found else None


@dataclass(frozen=True, slots=True)
class GpuFacts:
    name: str | None  # None: torch sees no CUDA device
    memory_gib: float | None
    free_gib: float | None  # free on the device when asked (vLLM's share already taken)
    torch: str
    torch_cuda: str | None  # the CUDA torch was built for; None for a CPU build


def gpu_facts() -> GpuFacts:
    import torch

    if not torch.cuda.is_available():
        return GpuFacts(None, None, None, str(torch.__version__), torch.version.cuda)
    free, total = torch.cuda.mem_get_info(0)
    return GpuFacts(
        torch.cuda.get_device_name(0),
        total / GIB,
        free / GIB,
        str(torch.__version__),
        torch.version.cuda,
    )


@dataclass(frozen=True, slots=True)
class FaissFacts:
    version: str
    distribution: str  # "faiss-gpu" or "faiss-cpu", the installed package
    gpus: int  # faiss.get_num_gpus(); 0 for a CPU build
    configured: str  # PGPT_INDEX_DEVICE
    used: str | None  # the device of the index a session gets: "cuda", "cpu"; None: refused
    index_class: str | None
    searched: bool  # that index found a vector it was given
    error: str | None = None


def faiss_facts(settings: Settings, embedder: Embedder) -> FaissFacts:
    """The index the product's session store (serving.wiring.make_store) makes here, tried
    with a few vectors."""
    import faiss

    distribution = ", ".join(importlib.metadata.packages_distributions().get("faiss", []))
    gpus = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    common = (str(faiss.__version__), distribution or "unknown", gpus, settings.index_device)
    store = make_store(settings, embedder)
    try:
        session = store.create()
    except ConfigError as exc:
        return FaissFacts(*common, None, None, False, exc.message)
    try:
        vectors = np.eye(3, embedder.dimension, dtype=np.float32)
        session.index.add(np.arange(3, dtype=np.int64), vectors)
        _, ids = session.index.search(vectors[1:2], 1)
        index = session.index
        return FaissFacts(*common, index.device, type(index).__name__, int(ids[0][0]) == 1)
    finally:
        store.close_all()


@dataclass(frozen=True, slots=True)
class ServerFacts:
    url: str
    version: str | None  # GET /version
    served: str | None  # the served model name (GET /v1/models: id)
    root: str | None  # the model it loaded (root: a Hugging Face id or a folder)
    max_model_len: int | None
    error: str | None = None


def server_facts(url: str, api_key: str | None) -> ServerFacts:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=10.0) as client:
            version = client.get("/version")
            models = client.get("/v1/models")
            models.raise_for_status()
            data = (models.json().get("data") or [{}])[0]
    except (httpx.HTTPError, ValueError) as exc:
        return ServerFacts(url, None, None, None, None, f"{type(exc).__name__}: {exc}")
    return ServerFacts(
        url,
        version.json().get("version") if version.status_code == 200 else None,
        data.get("id"),
        data.get("root"),
        data.get("max_model_len"),
    )
