"""`pgpt embedder --prepare-only`: the setup step that builds the ONNX embedding models."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from rag.embedding_build import prepare_onnx_model
from rag.onnx_model import onnx_model_dir
from serving.cli import main


def test_prepare_only_reports_the_model_folder(settings: Any) -> None:
    prepare_onnx_model(settings)  # built by make setup; a no-op then
    result = CliRunner().invoke(main, ["embedder", "--prepare-only"])
    assert result.exit_code == 0, result.output
    assert str(onnx_model_dir(settings)) in result.output
