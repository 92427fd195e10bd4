"""Setup, not run time: builds the CPU copies of the bundled all-MiniLM-L6-v2 into the
cache once (``pgpt embedder --prepare-only``; ``make setup`` and the image build run it).

``prepare_onnx_model`` exports the bundled sentence-transformers model with
``torch.onnx.export`` and quantizes it with ONNX Runtime and with NNCF for OpenVINO.
This is the only module that needs torch's exporter, onnx and nncf; the embedders
(rag/embedding.py) read the files it writes and import nothing of it.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from core.cache import build_cache_folder
from core.openvino import load_openvino
from core.ort import load_onnxruntime
from core.settings import Settings
from rag.embedding import bundled_model_tokenizer, pad_batch, resolve_model_path
from rag.onnx_model import MODEL_FILES, OPENVINO_WEIGHTS, onnx_model_dir

# Static int8 needs the activations' ranges: read off our own docs' paragraphs (prose and
# tables of numbers, as uploads are), never off a document a benchmark measures.
CALIBRATION_TEXTS = Path(__file__).with_name("embedder_calibration.txt")
CALIBRATION_BATCH = 8
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
# 17 has LayerNormalization as one op; ONNX Runtime 1.20+ runs it.
OPSET = 17


def _is_complete(folder: Path) -> bool:
    files = (*MODEL_FILES.values(), OPENVINO_WEIGHTS)
    return all((folder / name).is_file() for name in files)


def prepare_onnx_model(settings: Settings) -> Path:
    """Export and quantize the bundled model into the cache once; return its folder."""
    target = onnx_model_dir(settings)

    def build(folder: Path) -> None:
        started = time.perf_counter()
        print(f"Exporting the embedding model to ONNX in {target} (once)...", file=sys.stderr)
        export_onnx(folder / MODEL_FILES["onnx"], threads=settings.threads)
        quantize_int8(folder / MODEL_FILES["onnx"], folder / MODEL_FILES["onnx-int8"])
        quantize_openvino_int8(folder / MODEL_FILES["onnx"], folder / MODEL_FILES["openvino-int8"])
        print(f"Done in {time.perf_counter() - started:.0f} s.", file=sys.stderr)

    return build_cache_folder(target, _is_complete, build)


def export_onnx(path: Path, *, threads: int) -> None:
    """The bundled BERT encoder in float32, with dynamic batch and sequence axes; its output
    is the last hidden state (pooling and normalization run in numpy, as in the embedder)."""
    import torch
    from transformers import AutoModel

    torch.set_num_threads(threads)
    # Eager attention: plain MatMul and Softmax ops with the mask added as a bias, which
    # any ONNX Runtime runs; nothing depends on how SDPA is traced.
    model = AutoModel.from_pretrained(
        resolve_model_path("bundled"), dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()

    class LastHiddenState(torch.nn.Module):
        """Three positional inputs, one output: the signature the export records."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            output = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return output.last_hidden_state  # type: ignore[no-any-return]

    # A padded row in the example, so the traced graph is the one that applies the mask.
    input_ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    attention_mask = (input_ids != 0).to(torch.int64)
    token_type_ids = torch.zeros_like(input_ids)
    axes = {0: "batch", 1: "sequence"}
    # The tracer warns about shape checks it records as constants; they hold for any
    # input whose mask is as long as its ids (tests/rag/test_onnx_embedding.py compares
    # padded batches with torch).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(),
            (input_ids, attention_mask, token_type_ids),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={name: axes for name in (*INPUT_NAMES, OUTPUT_NAME)},
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8: weights stored as int8, activations quantized per batch at run time."""
    load_onnxruntime()  # telemetry off before the quantizer initialises it
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per channel: one scale per output column. One scale per tensor measured cosine 0.87
    # (worst of 256 COVID-QA chunks) to the float32 vectors, per channel 0.987
    # (docs/benchmarks/embedder-backends.md).
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)


def quantize_openvino_int8(source: Path, target: Path) -> None:
    """Static int8 for OpenVINO: weights and activations, with ranges calibrated by NNCF.

    1.4x the speed of ONNX Runtime's dynamic int8 here, and closer to float32 (worst
    cosine 0.990-0.993 against 0.976-0.986; docs/benchmarks/embedder-backends.md).
    """
    openvino = load_openvino()  # telemetry blocked before NNCF looks for it
    import nncf

    tokenizer = bundled_model_tokenizer()
    texts = CALIBRATION_TEXTS.read_text(encoding="utf-8").splitlines()
    encodings = sorted(tokenizer.encode_batch(texts), key=lambda e: len(e.ids))
    batches = [
        pad_batch(encodings[start : start + CALIBRATION_BATCH])
        for start in range(0, len(encodings), CALIBRATION_BATCH)
    ]
    model = openvino.Core().read_model(str(source))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(batches),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(batches),
    )
    openvino.save_model(quantized, str(target))
