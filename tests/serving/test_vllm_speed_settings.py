"""What makes the embedded vLLM read prompts at speed (docs/benchmarks/latency.md): the
launched command line and environment, and the prefill rate /healthz reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import load_settings
from rag.generation import Message
from serving.launcher import EmbeddedVLLM, model_dtype
from serving.vllm_client import PrefillMeter, StreamEvent, VLLMGenerator, parse_sse_line
from tests.plugins.vllm_server import VLLMServerHandle

QUESTION: list[Message] = [{"role": "user", "content": "Name a colour."}]


def launched() -> tuple[list[str], dict[str, str]]:
    server = EmbeddedVLLM(load_settings(), port=20001)
    return server.command(Path("/models/m")), server.environment()


def test_vllm_is_launched_with_the_measured_thread_settings() -> None:
    _, env = launched()
    assert (env["VLLM_CPU_OMP_THREADS_BIND"], env["OMP_NUM_THREADS"]) == ("nobind", "1")


@pytest.mark.parametrize(
    ("flags", "dtype"), [("avx2 avx512_bf16", "bfloat16"), ("avx2", "float32")]
)
def test_vllm_is_launched_in_the_dtype_the_cpu_multiplies_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, dtype: str
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"flags\t\t: fpu sse2 {flags}\n", encoding="utf-8")
    monkeypatch.setattr("serving.launcher.CPUINFO", cpuinfo)
    command, _ = launched()
    assert command[command.index("--dtype") + 1] == dtype


def test_vllm_reports_cached_prompt_tokens_for_the_prefill_rate() -> None:
    command, _ = launched()
    assert "--enable-prompt-tokens-details" in command


AVX2_ONLY = "flags\t\t: fpu sse sse2 avx avx2 fma f16c\n"
ZEN4 = "flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni avx512_bf16\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"
NEOVERSE_V1 = "Features\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "dtype"),
    [(AVX2_ONLY, "float32"), (ZEN4, "bfloat16"), (SAPPHIRE_RAPIDS, "bfloat16"),
     (NEOVERSE_V1, "bfloat16"), ("", "float32")],
)  # fmt: skip
def test_bfloat16_only_where_the_cpu_multiplies_it_natively(cpuinfo: str, dtype: str) -> None:
    # Without it oneDNN refuses vLLM's bf16 linear layers and torch's fallback crawls.
    assert model_dtype(cpuinfo) == dtype


@pytest.mark.vllm
def test_the_real_vllm_builds_its_linear_layers_with_onednn(
    vllm_server: VLLMServerHandle,
) -> None:
    log = vllm_server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Failed to create oneDNN linear" not in log


# --- the prefill rate ------------------------------------------------------------------


def test_usage_in_a_chunk_gives_the_prompt_tokens_not_served_from_the_cache() -> None:
    chunk = {
        "choices": [{"delta": {"content": "Red"}}],
        "usage": {"prompt_tokens": 900, "prompt_tokens_details": {"cached_tokens": 640}},
    }
    assert parse_sse_line(f"data: {json.dumps(chunk)}") == StreamEvent("Red", new_prompt_tokens=260)


def test_prefill_meter_rates_the_last_minute_of_long_enough_prompts() -> None:
    meter = PrefillMeter(window_s=60, min_tokens=256)
    meter.record(1000, 4.0, now=0.0)  # gone by t=70
    meter.record(1500, 1.0, now=30.0)
    meter.record(500, 1.5, now=40.0)
    meter.record(100, 5.0, now=50.0)  # too short to say anything about prefill
    assert meter.rate(now=70.0) == 2000 / 2.5
    assert meter.rate(now=200.0) is None


async def test_a_streamed_answer_records_new_prompt_tokens_over_time_to_first_token() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "max_model_len": 2048}]})
        sent = json.loads(request.content)
        assert sent["stream_options"] == {"include_usage": True}
        usage = {"prompt_tokens": 900, "prompt_tokens_details": {"cached_tokens": 200}}
        text = json.dumps({"choices": [{"delta": {"content": "Red"}}]})
        closing = json.dumps({"choices": [], "usage": usage})
        return httpx.Response(200, text=f"data: {text}\n\ndata: {closing}\n\ndata: [DONE]\n\n")

    generator = VLLMGenerator("http://vllm", transport=httpx.MockTransport(reply))
    assert [t async for t in generator.stream(QUESTION, max_tokens=4, temperature=0)] == ["Red"]
    (sample,) = generator.prefill._samples
    assert sample.tokens == 700 and sample.seconds > 0
    await generator.aclose()


def models_only(request: httpx.Request) -> httpx.Response:
    if request.url.path in ("/health", "/v1/models"):
        return httpx.Response(200, json={"data": [{"id": "m", "max_model_len": 2048}]})
    return httpx.Response(404)


@pytest.mark.parametrize(("tokens_per_s", "slow"), [(60.0, True), (900.0, False)])
def test_healthz_says_when_the_generator_reads_prompts_slower_than_the_floor(
    embedder: Any, tokens_per_s: float, slow: bool
) -> None:
    from fastapi.testclient import TestClient

    from serving.app import create_app

    generator = VLLMGenerator("http://vllm", transport=httpx.MockTransport(models_only))
    generator.prefill.record(int(tokens_per_s * 10), 10.0)
    settings = load_settings(generator_min_prefill_tokens_per_s=200)
    with TestClient(create_app(settings, embedder=embedder, generator=generator)) as client:
        health = client.get("/healthz").json()["generator"]
    assert (health["prefill_tokens_per_s"], health["slow"]) == (tokens_per_s, slow)
