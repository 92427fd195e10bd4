"""ONNX Runtime, loaded with its telemetry off (the embedder and OCR both run it)."""

from __future__ import annotations

import os
from typing import Any


def load_onnxruntime() -> Any:  # the module; it ships no type stubs
    """The ``onnxruntime`` module. On Linux (since 1.2x) it creates a device id and an event
    store under ~/.cache/Microsoft and uploads usage events unless ORT_DISABLE_TELEMETRY is
    set before it initialises: nothing may be written outside the process."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime

    return onnxruntime
