"""The ONNX Runtime and OpenVINO embedders against torch: the real bundled model, real files.

The files are built by `pgpt embedder --prepare-only` (make setup); the fixture builds
them into the same cache if they are missing (about 15 s, once).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import ConfigError
from core.settings import load_settings
from rag.embedding import (
    Embedder,
    OnnxEmbedder,
    OpenVinoEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_tokenizer,
    make_embedder,
    pad_batch,
    resolve_backend,
    resolve_batch_size,
)
from rag.embedding_build import prepare_onnx_model
from rag.onnx_model import PREPARE_COMMAND, onnx_model_file

# Real sentences of very different lengths (a question, table rows, prose, one longer than
# the model's 256-token window), so batches are padded and one input is truncated.
SENTENCES = [
    "What was the operating margin in FY2022?",
    "Coronaviruses are enveloped RNA viruses.",
    "The Transformer allows for significantly more parallelization and can reach a new state "
    "of the art in translation quality after being trained for as little as twelve hours on "
    "eight P100 GPUs.",
    "Revenue 46,298 51,761 (10.6)%",
    "Net cash provided by operating activities was $1.8 billion.",
    "Which receptor does SARS-CoV-2 use to enter human cells?",
    "The spike protein binds to angiotensin-converting enzyme 2 (ACE2) on the surface of "
    "human respiratory epithelial cells.",
    "Inventories are stated at the lower of cost or net realizable value.",
    "Attention Is All You Need",
    "An attention function can be described as mapping a query and a set of key-value pairs "
    "to an output, where the query, keys, values, and output are all vectors.",
    "How many employees did the company have at the end of the fiscal year?",
    "We had approximately 71,100 full-time and part-time employees as of January 28, 2023.",
    "Patients with severe disease were older and more often had hypertension or diabetes.",
    "Total liabilities and equity $ 15,803 $ 17,504",
    "The incubation period was estimated at a median of 5.1 days.",
    "Dropout is applied to the output of each sub-layer before it is added to the input.",
    "Item 1A. Risk Factors",
    "Masks reduce the spread of respiratory droplets from infected people.",
    "Goodwill is tested for impairment annually in the fourth quarter.",
    " ".join(
        ["The basic reproduction number of the virus was estimated from early case counts."] * 30
    ),
]


@pytest.fixture(scope="module")
def onnx_settings() -> Any:
    """Settings whose cache holds the ONNX files (built here if `make setup` did not)."""
    settings = load_settings()
    prepare_onnx_model(settings)
    return settings


@pytest.fixture(scope="module")
def float32_embedder(onnx_settings: Any) -> OnnxEmbedder:
    """Batches of 4, so that sorting by length reorders inputs across batches."""
    return OnnxEmbedder(
        onnx_model_file(onnx_settings, "onnx"),
        quantized=False,
        threads=onnx_settings.threads,
        batch_size=4,
    )


@pytest.fixture(scope="module")
def int8_embedder(onnx_settings: Any) -> Embedder:
    return make_embedder(onnx_settings.model_copy(update={"embedding_backend": "onnx-int8"}))


@pytest.fixture(scope="module")
def openvino_embedder(onnx_settings: Any) -> Embedder:
    return make_embedder(onnx_settings.model_copy(update={"embedding_backend": "openvino-int8"}))


@pytest.fixture(scope="module")
def torch_float32_vectors() -> np.ndarray:
    torch_embedder = SentenceTransformerEmbedder(
        "bundled", device="cpu", dtype="float32", batch_size=64
    )
    return torch_embedder.embed(SENTENCES)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)  # both L2-normalized


def test_float32_onnx_vectors_match_torch_float32(
    float32_embedder: OnnxEmbedder, torch_float32_vectors: np.ndarray
) -> None:
    vectors = float32_embedder.embed(SENTENCES)
    assert cosines(vectors, torch_float32_vectors).min() >= 0.999


def test_int8_vectors_stay_close_to_torch_float32(
    int8_embedder: Embedder, torch_float32_vectors: np.ndarray
) -> None:
    """Measured: worst 0.987 of these sentences, and of 256 COVID-QA chunks."""
    vectors = int8_embedder.embed(SENTENCES)
    assert cosines(vectors, torch_float32_vectors).min() >= 0.98


def test_openvino_int8_vectors_stay_close_to_torch_float32(
    openvino_embedder: Embedder, torch_float32_vectors: np.ndarray
) -> None:
    """Measured: worst 0.990-0.993 of 182-282 chunks of PDFs and COVID-QA articles."""
    vectors = openvino_embedder.embed(SENTENCES)
    assert cosines(vectors, torch_float32_vectors).min() >= 0.98


def test_openvino_vectors_come_back_in_input_order(openvino_embedder: Embedder) -> None:
    """Static int8 scales do not depend on the batch: a text's vector is its own, alone
    or padded among longer ones."""
    batched = openvino_embedder.embed(SENTENCES)
    alone = np.vstack([openvino_embedder.embed([text]) for text in SENTENCES])
    assert cosines(batched, alone).min() >= 0.999


def test_vectors_come_back_in_input_order_whatever_the_lengths(
    float32_embedder: OnnxEmbedder,
) -> None:
    """Each vector of a mixed-length call is its own text's, as embedded alone (unpadded)."""
    batched = float32_embedder.embed(SENTENCES)
    alone = np.vstack([float32_embedder.embed([text]) for text in SENTENCES])
    assert np.abs(batched - alone).max() < 1e-4


def test_a_batch_is_padded_to_a_multiple_of_tokens_with_the_padding_masked() -> None:
    encodings = bundled_model_tokenizer().encode_batch(SENTENCES[:2])  # 13 and 10 tokens
    feed = pad_batch(encodings, multiple=16)
    assert (feed["input_ids"].shape, feed["attention_mask"].sum(axis=1).tolist()) == (
        (2, 16),
        [len(encodings[0].ids), len(encodings[1].ids)],
    )


def test_the_backend_setting_picks_the_embedder(
    int8_embedder: Embedder, openvino_embedder: Embedder
) -> None:
    described = [
        (type(e), e.name, e.dtype, e.dimension, e.max_tokens)
        for e in (int8_embedder, openvino_embedder)
    ]
    assert described == [
        (OnnxEmbedder, "all-MiniLM-L6-v2-onnx", "int8", 384, 254),
        (OpenVinoEmbedder, "all-MiniLM-L6-v2-openvino", "int8", 384, 254),
    ]


def test_a_missing_model_file_names_the_command_that_builds_it(tmp_path: Path) -> None:
    settings = load_settings(cache_dir=tmp_path, embedding_backend="onnx-int8")
    with pytest.raises(ConfigError) as caught:
        make_embedder(settings)
    assert PREPARE_COMMAND in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "backend"),
    [
        ({"embedding_device": "cpu"}, "openvino-int8"),  # the default on a CPU machine
        ({"embedding_device": "cpu", "embedding_model": "/models/other"}, "torch"),
        ({"embedding_device": "cpu", "embedding_backend": "torch"}, "torch"),
    ],
)
def test_the_auto_backend_is_openvino_int8_only_for_the_bundled_model_on_the_cpu(
    overrides: dict[str, str], backend: str
) -> None:
    assert resolve_backend(load_settings(**overrides)) == backend


@pytest.mark.parametrize(
    ("overrides", "batch_size"),
    [
        ({"embedding_device": "cpu"}, 8),  # int8 on the CPU: small batches stay in cache
        ({"embedding_device": "cpu", "embedding_backend": "torch"}, 64),
        ({"embedding_device": "cpu", "embedding_batch_size": 32}, 32),  # set: as set
    ],
)
def test_an_unset_batch_size_is_the_backends_own(
    overrides: dict[str, object], batch_size: int
) -> None:
    assert resolve_batch_size(load_settings(**overrides)) == batch_size


def test_the_default_embedder_on_the_cpu_never_imports_torch() -> None:
    code = (
        "import sys; from core.settings import load_settings; "
        "from rag.embedding import make_embedder; "
        "make_embedder(load_settings(embedding_device='cpu')).embed(['a sentence']); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("backend", ["onnx-int8", "openvino-int8"])
def test_the_cpu_embedders_leave_no_telemetry_files(backend: str, tmp_path: Path) -> None:
    """ONNX Runtime would write a device id and an event store under ~/.cache/Microsoft;
    importing OpenVINO starts openvino_telemetry, which writes ~/intel/openvino_ga_cid."""
    code = (
        "from core.settings import load_settings; from rag.embedding import make_embedder; "
        f"make_embedder(load_settings(embedding_backend='{backend}')).embed(['a sentence'])"
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PGPT_CACHE_DIR": str(load_settings().cache_dir),  # the built model files
    }
    env.pop("ORT_DISABLE_TELEMETRY", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == []
