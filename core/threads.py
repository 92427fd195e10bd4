"""The API process's CPU threads, set once for every library that runs a thread pool.

torch (OpenMP), FAISS (its own copy of OpenMP), OpenBLAS/MKL under numpy and the Rust
tokenizers each size a pool from the environment when they are loaded, and most keep
idle threads spinning on a core unless told otherwise. On cores shared with the parser
workers, vLLM and other uploads, every extra runnable thread takes time from the one
doing the work. So ``configure_threads`` runs first, at process start (``pgpt serve``,
the app factory, benchmarks), before any of those libraries is imported; libraries
loaded before it are set through their own calls. OpenVINO and ONNX Runtime take the
same count from ``PGPT_THREADS`` when their embedder is built (rag/embedding.py).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

# Read by each library when it loads. OMP_WAIT_POLICY=PASSIVE and GOMP_SPINCOUNT=0: an
# idle OpenMP thread sleeps at once instead of spinning on a core (libgomp: torch and
# FAISS; measured, one query's embedding took 990 ms spinning and 28 ms passive under
# load); KMP_BLOCKTIME=0 is the same for Intel's OpenMP, should a library bring it.
WAIT_POLICY = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "GOMP_SPINCOUNT": "0",
    "KMP_BLOCKTIME": "0",
    # The tokenizer's batch encoding would start one thread per core for a few ms.
    "TOKENIZERS_PARALLELISM": "false",
}
POOL_SIZES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_configured: int | None = None


def configure_threads(threads: int) -> None:
    """Size every library's thread pool in this process to ``threads``, idle threads
    sleeping. The pool sizes follow PGPT_THREADS over any OMP_NUM_THREADS; a wait policy
    already in the environment is kept (an operator's choice)."""
    global _configured
    for name in POOL_SIZES:
        os.environ[name] = str(threads)
    for name, value in WAIT_POLICY.items():
        os.environ.setdefault(name, value)
    # Libraries loaded before this call (a test run; anything importing rag.index) are
    # told through their own setters. OpenMP's count is per thread: FAISS's setter covers
    # the calling thread only, which is why this call comes before FAISS loads.
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if _configured != threads:
        log.info("CPU threads per library: %d (PGPT_THREADS)", threads)
    _configured = threads


def configured_threads() -> int | None:
    """The count of the last ``configure_threads`` call, or None before it."""
    return _configured
