"""The embedded vLLM CPU server: model preparation, lifecycle, outage and recovery, no orphans."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from click.testing import CliRunner

from core.errors import ConfigError, GeneratorUnavailableError
from core.settings import load_settings
from rag.generation import GeneratorStatus, Message
from serving.cli import main
from serving.launcher import (
    SERVED_MODEL_NAME,
    EmbeddedVLLM,
    bundled_gguf_path,
    is_progress_or_blank,
    model_dir,
    prepare_model,
)
from tests.plugins.vllm_server import VLLMServerHandle
from tests.support import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def family_of(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def gone(processes: list[psutil.Process]) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=60)
    return not alive


# --- the model -----------------------------------------------------------------


def test_bundled_gguf_is_found() -> None:
    path = bundled_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def converted_cache(cache_dir: Path) -> Path:
    """A cache holding what a finished conversion leaves (the conversion itself is the slow
    test below, and `make setup`'s): `make unit` never converts the GGUF."""
    folder = model_dir(load_settings(cache_dir=cache_dir))
    folder.mkdir(parents=True)
    for name in ("config.json", "tokenizer_config.json", "model.safetensors"):
        (folder / name).write_text("{}", encoding="utf-8")
    return folder


def test_prepare_model_is_a_no_op_once_converted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = converted_cache(tmp_path)
    weights = first / "model.safetensors"
    before = weights.stat().st_mtime_ns
    monkeypatch.setattr("serving.launcher._convert_gguf", pytest.fail)
    settings = load_settings(cache_dir=tmp_path)
    assert prepare_model(settings) == first == model_dir(settings)
    assert weights.stat().st_mtime_ns == before


def test_the_converted_model_lives_outside_the_repo(settings: Any) -> None:
    assert PROJECT_ROOT not in model_dir(settings).parents


@pytest.mark.slow  # a full GGUF conversion
def test_prepare_model_converts_into_a_fresh_cache_atomically(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    settings = load_settings(cache_dir=tmp_path)
    folder = prepare_model(settings)
    assert folder == tmp_path / "models" / SERVED_MODEL_NAME
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "llama"
    assert config.torch_dtype is not None and "bfloat16" in str(config.torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    chat: list[Message] = [{"role": "user", "content": "Hello"}]
    rendered = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")
    # Only the finished folder and the lock remain: no half-built siblings.
    leftovers = {p.name for p in folder.parent.iterdir()} - {SERVED_MODEL_NAME}
    assert all(name.endswith(".lock") for name in leftovers), leftovers
    # Converted as root in the image, read as `app`: every file, the weights too, is 0644.
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    assert modes["model.safetensors"] == 0o644
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_server_listens_on_loopback_and_serves_the_model(vllm_server: VLLMServerHandle) -> None:
    assert vllm_server.url.startswith("http://127.0.0.1:")
    models = httpx.get(f"{vllm_server.url}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [SERVED_MODEL_NAME]


def test_a_busy_port_is_refused_with_a_clear_error(
    vllm_server: VLLMServerHandle, settings: Any
) -> None:
    port = int(vllm_server.url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match="already answers"):
        EmbeddedVLLM(settings, host="127.0.0.1", port=port).start()


async def test_prompt_text_never_reaches_the_server_log(vllm_server: VLLMServerHandle) -> None:
    marker = f"zebra-{uuid.uuid4().hex}"
    client = vllm_server.make_generator()
    messages: list[Message] = [{"role": "user", "content": f"Repeat this code: {marker}"}]
    too_long: list[Message] = [{"role": "user", "content": f"{marker} " * 5000}]
    try:
        assert await client.count_tokens(messages) > 0
        answer = "".join(
            [piece async for piece in client.stream(messages, max_tokens=32, temperature=0.0)]
        )
        # A rejected request must not quote the prompt either, in the log or in our error.
        with pytest.raises(GeneratorUnavailableError, match="400") as rejected:
            [piece async for piece in client.stream(too_long, max_tokens=8, temperature=0.0)]
    finally:
        await client.aclose()
    assert answer
    assert marker not in rejected.value.message
    log = vllm_server.log_path.read_text(encoding="utf-8")
    assert "Application startup complete" in log  # the log is really being written
    assert marker not in log
    assert "Repeat this code" not in log


async def test_stop_kills_everything_then_outage_is_reported_and_restart_recovers(
    vllm_server: VLLMServerHandle,
) -> None:
    client = vllm_server.make_generator(retries=1)
    messages: list[Message] = [{"role": "user", "content": "Say hi."}]
    try:
        assert await client.status() is GeneratorStatus.READY
        family = family_of(vllm_server.pid or 0)
        assert len(family) >= 2, "vLLM runs its engine in child processes"
        vllm_server.stop()
        assert gone(family), "stop() must leave no process behind"
        assert not vllm_server.is_running()
        vllm_server.stop()  # a second stop is harmless

        assert await client.status() is GeneratorStatus.UNAVAILABLE
        with pytest.raises(GeneratorUnavailableError, match="Cannot reach"):
            await client.count_tokens(messages)
        with pytest.raises(GeneratorUnavailableError):
            [piece async for piece in client.stream(messages, max_tokens=4, temperature=0.0)]
        fresh = vllm_server.make_generator(retries=0)
        with pytest.raises(GeneratorUnavailableError):
            await fresh.info()
        await fresh.aclose()

        vllm_server.start()
        assert await client.status() is GeneratorStatus.READY
        assert await client.count_tokens(messages) > 0
        pieces = [piece async for piece in client.stream(messages, max_tokens=4, temperature=0.0)]
        assert pieces
    finally:
        await client.aclose()
        vllm_server.ensure_running()


@pytest.mark.slow  # starts (and fails) a vLLM subprocess
def test_startup_failure_is_reported_with_the_servers_output(settings: Any, tmp_path: Path) -> None:
    broken = EmbeddedVLLM(settings, port=free_port(), model_path=tmp_path / "no-model")
    with pytest.raises(GeneratorUnavailableError, match="exited during startup") as caught:
        broken.start()
    assert "no-model" in caught.value.message  # the tail of vLLM's own error output
    assert not broken.is_running()


# --- `pgpt vllm` ---------------------------------------------------------------


def test_cli_refuses_to_start_when_an_external_server_is_configured() -> None:
    result = CliRunner().invoke(main, ["vllm"], env={"PGPT_VLLM_URL": "http://gpu-box:8000"})
    assert result.exit_code != 0
    assert "external vLLM server is configured" in result.output


def test_cli_prepare_only_reports_the_model_folder(tmp_path: Path) -> None:
    folder = converted_cache(tmp_path)
    env = {"PGPT_VLLM_URL": "", "PGPT_CACHE_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["vllm", "--prepare-only"], env=env)
    assert result.exit_code == 0, result.output
    assert str(folder) in result.output


def _start_cli_server(port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PGPT_VLLM_URL"}
    return subprocess.Popen(
        [sys.executable, "-c", "from serving.cli import main; main()", "vllm", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(cli: subprocess.Popen[str]) -> None:
    assert cli.stderr is not None
    for line in cli.stderr:
        if "vLLM is ready" in line:
            return
    raise AssertionError(f"pgpt vllm exited with {cli.wait()} before it was ready")


@pytest.mark.vllm
def test_cli_runs_in_the_foreground_and_ctrl_c_stops_everything() -> None:
    port = free_port()
    cli = _start_cli_server(port)
    try:
        _wait_ready(cli)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        family = family_of(cli.pid)
        assert len(family) >= 3  # pgpt, the API server, the engine
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=60) == 0
        assert gone(family)
    finally:
        if cli.poll() is None:
            cli.kill()


@pytest.mark.vllm
def test_server_dies_with_a_killed_parent() -> None:
    port = free_port()
    cli = _start_cli_server(port)
    try:
        _wait_ready(cli)
        family = family_of(cli.pid)
        cli.kill()  # SIGKILL: no cleanup code runs in the parent
        cli.wait(timeout=10)
        assert gone(family)
    finally:
        if cli.poll() is None:
            cli.kill()


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        (
            "Loading safetensors checkpoint shards: 100% Completed | 1/1 [00:01<00:00,  1.45s/it]",
            True,
        ),
        ("Loading weights:   5%|▍         | 5/103 [00:00<00:03, 31.08it/s]", True),
        ("   ", True),
        ("(APIServer pid=1) WARNING 12-02 17:24:56 [cpu.py:224] Triton is not installed.", False),
        ("(APIServer pid=1) ERROR 12-02 17:24:56 [core.py:1] 100% of memory | used", False),
    ],
)
def test_quiet_vllm_output_drops_progress_bars_and_blank_lines(line: str, noise: bool) -> None:
    assert is_progress_or_blank(line) is noise


def test_quiet_vllm_logs_warnings_only_and_keeps_uvicorn_quiet(settings: Any) -> None:
    quiet = EmbeddedVLLM(settings, verbose=False)
    assert quiet.environment()["VLLM_LOGGING_LEVEL"] == "WARNING"
    assert quiet.command(Path("/m"))[-2:] == ["--uvicorn-log-level", "warning"]
    verbose = EmbeddedVLLM(settings)
    assert verbose.environment()["VLLM_LOGGING_LEVEL"] == "INFO"
    assert verbose.command(Path("/m"))[-2:] == ["--uvicorn-log-level", "info"]


def test_vllm_cache_root_from_the_environment_wins(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-only image points vLLM's caches at its tmpfs (Dockerfile: VLLM_CACHE_ROOT)."""
    assert EmbeddedVLLM(settings).environment()["VLLM_CACHE_ROOT"] == str(
        settings.cache_dir / "vllm"
    )
    monkeypatch.setenv("VLLM_CACHE_ROOT", "/tmp/vllm-cache")
    assert EmbeddedVLLM(settings).environment()["VLLM_CACHE_ROOT"] == "/tmp/vllm-cache"
