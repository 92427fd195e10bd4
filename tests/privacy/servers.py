"""Real servers as subprocesses in a file-system sandbox, their output kept in memory.

A ``Sandbox`` is a set of fresh, empty folders that a server gets as HOME, TMPDIR,
the XDG folders and its working directory; afterwards every file that appeared there
can be searched. Server output goes to in-memory buffers, never to a file, so that it
can be checked for document text without itself leaving a trace on disk.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.support import LOOPBACK, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The venv's interpreter; the project is installed in it, so `-m serving.cli` works anywhere.
PYTHON = sys.executable
VLLM_START_TIMEOUT_S = 600.0  # on two busy shared cores vLLM can take minutes
API_START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
SYSTEM_TEMP_FOLDERS = (Path("/tmp"), Path("/dev/shm"), Path("/var/tmp"))


def model_cache_dir() -> Path:
    """The existing cache with the converted models (LLM, ONNX embedder), so none is rebuilt."""
    from core.settings import default_cache_dir

    configured = os.environ.get("PGPT_CACHE_DIR")
    return Path(configured) if configured else default_cache_dir()


@dataclass(frozen=True)
class Sandbox:
    """Fresh empty folders for everything a process may write to by convention."""

    root: Path

    NAMES = ("home", "tmp", "cache", "config", "data", "state", "runtime", "work")

    @classmethod
    def create(cls, root: Path) -> Sandbox:
        for name in cls.NAMES:
            (root / name).mkdir(parents=True, mode=0o700)
        return cls(root)

    @property
    def folders(self) -> list[Path]:
        return [self.root / name for name in self.NAMES]

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    def environment(self, **pgpt: str) -> dict[str, str]:
        """This environment with every conventional write location moved into the sandbox,
        and PGPT_* settings replaced by ``pgpt`` (keys without the prefix)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGPT_")}
        tmp = str(self.root / "tmp")
        env.update(
            HOME=str(self.root / "home"),
            TMPDIR=tmp,
            TEMP=tmp,
            TMP=tmp,
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_DATA_HOME=str(self.root / "data"),
            XDG_STATE_HOME=str(self.root / "state"),
            XDG_RUNTIME_DIR=str(self.root / "runtime"),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            OMP_NUM_THREADS="2",
            PYTHONUNBUFFERED="1",
            PGPT_CACHE_DIR=str(model_cache_dir()),
        )
        env.update({f"PGPT_{key.upper()}": value for key, value in pgpt.items()})
        return env


class Server:
    """A subprocess in its own process group; stdout and stderr collected in memory."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path) -> None:
        self.name = name
        self._output = bytearray()
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            with self._lock:
                self._output += line

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.decode(errors="replace").splitlines()[-lines:])

    def is_running(self) -> bool:
        return self.process.poll() is None

    def family(self) -> list[psutil.Process]:
        """The process and everything it started, while they live."""
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        return []

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> list[str]:
        """Ask it to stop with ``sig`` and wait; describe the processes that outlived it
        (after which the whole group is killed, so nothing is left either way)."""
        family = self.family()
        described = {p.pid: _describe(p) for p in family}
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_S)
        _, alive = psutil.wait_procs(family, timeout=10)
        survivors = [p for p in alive if _is_alive(p)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for process in survivors:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        return [described[p.pid] for p in survivors]


def _describe(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"{process.pid} {' '.join(process.cmdline())[:120]}"
    return str(process.pid)


def _is_alive(process: psutil.Process) -> bool:
    try:
        running: bool = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        return running
    except psutil.NoSuchProcess:
        return False


def wait_until(check: Callable[[], bool], server: Server, what: str, timeout_s: float) -> None:
    """Poll ``check`` until it holds; fail early, with the server's output, if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.is_running():
            raise AssertionError(f"{server.name} exited before {what}:\n{server.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(1.0)
    raise AssertionError(f"{server.name}: no {what} within {timeout_s:.0f} s:\n{server.tail()}")


def start_vllm(sandbox: Sandbox, port: int) -> Server:
    """`pgpt vllm` (the embedded vLLM CPU server) in the sandbox; returns once healthy."""
    server = Server(
        "vLLM server",
        [PYTHON, "-m", "serving.cli", "vllm", "--host", LOOPBACK, "--port", str(port)],
        sandbox.environment(),
        sandbox.workdir,
    )
    url = f"http://{LOOPBACK}:{port}/health"
    wait_until(
        lambda: httpx.get(url, timeout=5).status_code == 200,
        server,
        "healthy vLLM",
        VLLM_START_TIMEOUT_S,
    )
    return server


def start_api(sandbox: Sandbox, port: int, *, generator_ready: bool, **settings: str) -> Server:
    """`pgpt serve` in the sandbox; returns once /healthz answers (with the generator ready,
    if asked)."""
    server = Server(
        "API server",
        [PYTHON, "-m", "serving.cli", "serve", "--host", LOOPBACK, "--port", str(port)],
        sandbox.environment(**settings),
        sandbox.workdir,
    )
    url = f"http://{LOOPBACK}:{port}/healthz"

    def healthy() -> bool:
        response = httpx.get(url, timeout=10)
        if response.status_code != 200:
            return False
        return not generator_ready or response.json()["generator"]["status"] == "ready"

    wait_until(healthy, server, "answer on /healthz", API_START_TIMEOUT_S)
    return server


class LocalStack:
    """The real deployment on one machine, sandboxed: `pgpt vllm` + `pgpt serve`.

    Restartable: ``start()`` is a no-op while both run.
    """

    def __init__(self, sandbox: Sandbox, **settings: str) -> None:
        self.sandbox = sandbox
        self.settings = settings
        self.vllm_port = free_port()
        self.api_port = free_port()
        self.vllm: Server | None = None
        self.api: Server | None = None
        self.outputs: list[tuple[str, bytes]] = []  # of servers already stopped
        self.started_at = time.time()

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    @property
    def running(self) -> bool:
        return all(s is not None and s.is_running() for s in (self.vllm, self.api))

    def start(self) -> None:
        if self.running:
            return
        self.stop()
        self.vllm = start_vllm(self.sandbox, self.vllm_port)
        self.api = start_api(
            self.sandbox,
            self.api_port,
            generator_ready=True,
            vllm_url=f"http://{LOOPBACK}:{self.vllm_port}",
            **self.settings,
        )

    def stop(self) -> list[str]:
        """Stop the API, then vLLM (SIGTERM, as `docker stop` would); return survivors."""
        survivors: list[str] = []
        for server in (self.api, self.vllm):
            if server is not None:
                survivors += server.stop()
                self.outputs.append((server.name, server.output))
        self.api = self.vllm = None
        return survivors


# --- finding traces on disk -----------------------------------------------------------


@dataclass
class ScanResult:
    files: int = 0
    bytes: int = 0
    hits: set[str] = field(default_factory=set)


def iter_files(root: Path, newer_than: float | None = None) -> Iterator[Path]:
    """Regular files under ``root`` (symlinks not followed), optionally only recent ones."""
    for folder, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            recent = newer_than is None or max(info.st_mtime, info.st_ctime) >= newer_than
            if recent and stat.S_ISREG(info.st_mode):
                yield path


def search_files(paths: Iterable[Path], needles: Mapping[str, bytes]) -> ScanResult:
    """Which of ``paths`` contain any needle; files are read in 8 MB pieces with overlap."""
    result = ScanResult()
    overlap = max(len(n) for n in needles.values()) - 1
    for path in paths:
        try:
            handle = path.open("rb")
        except OSError:
            continue  # vanished, or a socket or FIFO
        with handle:
            result.files += 1
            previous = b""
            while piece := _read(handle):
                result.bytes += len(piece)
                window = previous + piece
                for label, needle in needles.items():
                    if needle in window:
                        result.hits.add(f"{path}: {label}")
                previous = window[-overlap:] if overlap else b""
    return result


def _read(handle: object) -> bytes:
    try:
        data: bytes = handle.read(8 * 1024 * 1024)  # type: ignore[attr-defined]
        return data
    except OSError:
        return b""
