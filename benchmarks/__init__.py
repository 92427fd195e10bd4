"""Benchmarks: ours against the standard LangChain pipeline, same process, same threads.

The environment is fixed here, before any benchmark module imports numpy or torch:
their BLAS and OpenMP pools read the thread count once, at import.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
# Idle OpenMP threads sleep instead of spinning. On shared cores a spinning thread holds
# the core its partner needs: single-query embedding measured ~1 s instead of ~20 ms.
# Batch throughput is unchanged; both pipelines run under the same policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
