"""The GPU acceptance run (benchmarks/gpu_check.py, #35): how it reads vLLM's log and judges a
GPU run, and the command end to end on this machine against the test session's embedded vLLM
CPU server, so that the first run on a real A100 is not its first run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from benchmarks.answer_bench import Row
from benchmarks.gpu_check import Facts, SetRun, verdict
from benchmarks.gpu_facts import FaissFacts, GpuFacts, ServerFacts, read_vllm_log
from benchmarks.results import results_path
from rag.answer import AnswerKind
from tests.conftest import PROJECT_ROOT

# vLLM 0.32 on an A100 with --attention-backend=FLASH_ATTN (docs/deploy.md) and its engine line.
A100_LOG = """\
(APIServer pid=1) INFO 12-08 01:02:03 [api_utils.py:327] vLLM server version 0.32.0, \
serving model Qwen/Qwen2.5-7B-Instruct
(EngineCore_DP0 pid=212) INFO 12-08 01:02:09 [core.py:134] Initializing a V1 LLM engine \
(v0.32.0) with config: model='Qwen/Qwen2.5-7B-Instruct', speculative_config=None, \
dtype=torch.bfloat16, max_seq_len=8192, kv_cache_dtype=auto, device_config=cuda, seed=0
(EngineCore_DP0 pid=212) INFO 12-08 01:02:15 [cuda.py:446] Using AttentionBackendEnum.FLASH_ATTN \
backend.
(EngineCore_DP0 pid=212) INFO 12-08 01:02:15 [unquantized.py:529] Using TritonExperts MoE backend
(EngineCore_DP0 pid=212) INFO 12-08 01:03:40 [kv_cache_utils.py:1087] GPU KV cache size: \
334,112 tokens, Maximum concurrency for 8,192 tokens per request: 40.78x
"""
QUESTIONS = 2  # a set, in each mode
HANG_GUARD_S = 1800  # a guard against a hung run on the shared cores, not a speed requirement
SETS = ("COVID-QA", "financebench-dev")
LABELS = ("auto", "auto, model first", "generate")


def test_a_gpu_log_names_flash_attention_and_the_engine() -> None:
    log = read_vllm_log(A100_LOG)
    assert (log.attention_backend, log.device, log.dtype, log.model, log.version) == (
        "FLASH_ATTN",
        "cuda",
        "torch.bfloat16",
        "Qwen/Qwen2.5-7B-Instruct",
        "0.32.0",
    )


def _gpu_facts(settings: Any, embedder: Any, log_text: str, index: str) -> Facts:
    return Facts(
        GpuFacts("NVIDIA A100-SXM4-40GB", 39.4, 5.1, "2.13.0+cu128", "12.8"),
        FaissFacts("1.15.1", "faiss-gpu", 1, "auto", index, "FaissGpuIndex", True),
        ServerFacts("http://vllm:8000", "0.32.0", "privategptpp-llm", "Qwen", 8192),
        read_vllm_log(log_text),
        "/out/vllm.log",
        settings,
        embedder,
    )


def test_a_gpu_run_fails_when_vllm_fell_back_from_flash_attention(
    settings: Any, fake_embedder: Any
) -> None:
    fallback = A100_LOG.replace(
        "AttentionBackendEnum.FLASH_ATTN", "AttentionBackendEnum.TRITON_ATTN"
    )
    answered = Row("auto", AnswerKind.GENERATED, True, 900.0, 12, False, 0)
    done = [SetRun("covidqa", "COVID-QA", planned=1, rows=[answered])]
    _, failed = verdict(_gpu_facts(settings, fake_embedder, fallback, "cuda"), done, 300.0)
    assert failed == ["vLLM's attention backend is TRITON_ATTN, not FLASH_ATTN"]


# --- the command, end to end on this machine ------------------------------------------------


@pytest.fixture(scope="module")
def cpu_run(vllm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """`python -m benchmarks.gpu_check --questions 2` against the session's vLLM CPU server
    and its log: the report and its results file."""
    output = tmp_path_factory.mktemp("gpu-check") / "gpu-check.md"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PGPT_ANSWER_MAX_TOKENS": "48"}
    env.pop("PGPT_VLLM_URL", None)
    command = [
        sys.executable, "-m", "benchmarks.gpu_check",
        "--questions", str(QUESTIONS),
        "--budget-min", "60",
        "--vllm-url", vllm_server.url,
        "--vllm-log", str(vllm_server.log_path),
        "--output", str(output),
    ]  # fmt: skip
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads(results_path(output).read_text(encoding="utf-8"))
    return output.read_text(encoding="utf-8"), results


@pytest.mark.slow
def test_the_cpu_run_says_plainly_it_is_not_a_gpu(cpu_run: tuple[str, Any]) -> None:
    report, _ = cpu_run
    assert "**NOT A GPU.** This machine has no GPU (torch sees no CUDA device)" in report


@pytest.mark.slow
def test_the_cpu_run_reports_what_vllm_logged_of_its_attention_backend(
    cpu_run: tuple[str, Any],
) -> None:
    report, _ = cpu_run
    assert "| attention backend (vLLM's log) | none named in vLLM's log (device `cpu`) |" in report


@pytest.mark.slow
def test_the_cpu_run_has_an_answer_row_per_set_and_mode(cpu_run: tuple[str, Any]) -> None:
    report, _ = cpu_run
    expected = [
        f"| {name} | `{label}` | {QUESTIONS} of {QUESTIONS} |" for name in SETS for label in LABELS
    ]
    assert [row for row in expected if row not in report] == []


@pytest.mark.slow
def test_the_cpu_run_writes_its_results_file(cpu_run: tuple[str, Any]) -> None:
    _, results = cpu_run
    assert results["machine"].startswith("no GPU; vLLM 0.32.0 on cpu")
