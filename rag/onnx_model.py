"""Where the CPU copies of the bundled all-MiniLM-L6-v2 are: ONNX float32, ONNX Runtime's
dynamic int8 and OpenVINO's static int8.

rag/embedding_build.py builds them once at setup (``pgpt embedder --prepare-only``;
``make setup`` and the image build run it); the product only reads them, through the
paths here: nothing is built or fetched at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from core.errors import ConfigError
from core.settings import Settings

OnnxBackend = Literal["onnx", "onnx-int8", "openvino-int8"]

MODEL_DIR_NAME = "all-MiniLM-L6-v2-onnx"
MODEL_FILES: dict[OnnxBackend, str] = {
    "onnx": "model.onnx",
    "onnx-int8": "model-int8.onnx",
    "openvino-int8": "openvino-int8.xml",
}
OPENVINO_WEIGHTS = "openvino-int8.bin"  # beside its .xml
PREPARE_COMMAND = "pgpt embedder --prepare-only"


def onnx_model_dir(settings: Settings) -> Path:
    return settings.cache_dir / "models" / MODEL_DIR_NAME


def onnx_model_file(settings: Settings, backend: OnnxBackend) -> Path:
    """The model file the backend reads; a ConfigError naming the command that builds it."""
    if settings.embedding_model != "bundled":
        raise ConfigError(
            f"PGPT_EMBEDDING_BACKEND={backend} runs only the bundled all-MiniLM-L6-v2, but "
            f"PGPT_EMBEDDING_MODEL={settings.embedding_model}. Set PGPT_EMBEDDING_BACKEND=torch "
            "for another model, or unset PGPT_EMBEDDING_MODEL."
        )
    path = onnx_model_dir(settings) / MODEL_FILES[backend]
    if not path.is_file():
        chosen = settings.embedding_backend
        named = backend if chosen == backend else f"{chosen} (on the CPU: {backend})"
        raise ConfigError(
            f"PGPT_EMBEDDING_BACKEND={named} needs the embedding model file {path}, which "
            f"is not built. Build it once with: {PREPARE_COMMAND} (make setup does this), "
            "with the same PGPT_CACHE_DIR; or set PGPT_EMBEDDING_BACKEND=torch."
        )
    return path
