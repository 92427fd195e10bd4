"""Uploads through the API, the path users take, against LangChain in the same run.

For each embedder backend, a warm ``pgpt serve`` in its own process on a loopback port,
started as a user starts it (only PGPT_EMBEDDING_BACKEND set). Each round posts the file
as the UI does (multipart ``files``) to a fresh session and times the request; then the
same file goes through the in-process ``Ingestor`` of the same backend (the breakdown
beside it) and through the standard LangChain pipeline (benchmarks/langchain_baseline.py).
The three alternate, round after round; medians, ratios as medians of paired rounds.

    flock /tmp/pgpt-cpu.lock .venv/bin/python -m benchmarks.ingest_http \\
        --output docs/benchmarks/ingest-http.md
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import langchain_baseline
from benchmarks.common import (
    PDFS,
    PROJECT_ROOT,
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    median,
    paired_ratio,
    progress,
    write_report,
)
from benchmarks.ingest_bench import (
    DEFAULT_PDFS,
    FINANCEBENCH_PDFS,
    TARGET_SPEEDUP,
    TEN_KS,
    LangChainPipeline,
    OurPipeline,
)
from benchmarks.results import Figure, write_results
from core.settings import load_settings
from core.threads import configure_threads
from ingest.loader import get_parser_pool
from rag.embedding import make_embedder

BACKENDS = ("openvino-int8", "onnx-int8", "torch")
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 600.0
UPLOAD_TIMEOUT_S = 900.0
TARGET_HTTP_SLOWDOWN = 1.3  # an upload through the API within 1.3x of the in-process time
STAGES = ("parse_ms", "ocr_ms", "chunk_ms", "embed_ms", "index_ms")


@dataclass(frozen=True, slots=True)
class Upload:
    pages: int
    chunks: int
    seconds: float  # the request as the client sees it
    stages_ms: dict[str, float]  # the server's own timings of the upload


class ApiServer:
    """``pgpt serve`` in a process of its own; uploads as the UI posts them."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGPT_")}
        env["PGPT_EMBEDDING_BACKEND"] = backend
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving.cli",
                "serve",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import httpx

        self._client = httpx.Client(
            base_url=f"http://{LOOPBACK}:{self.port}", timeout=UPLOAD_TIMEOUT_S
        )

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"pgpt serve ({self.backend}) exited at start")
            try:
                if self._client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"pgpt serve ({self.backend}) not ready in {START_TIMEOUT_S:.0f} s")

    def upload(self, path: Path) -> Upload:
        data = path.read_bytes()
        session_id = self._client.post("/v1/sessions").json()["session_id"]
        try:
            started = time.perf_counter()
            response = self._client.post(
                f"/v1/sessions/{session_id}/documents",
                files=[("files", (path.name, data, "application/pdf"))],
            )
            seconds = time.perf_counter() - started
            response.raise_for_status()
        finally:
            self._client.delete(f"/v1/sessions/{session_id}")
        document = response.json()["documents"][0]
        return Upload(document["pages"], document["chunks"], seconds, document["timings"])

    def close(self) -> None:
        self._client.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def free_port() -> int:
    """A free loopback port in 20000-40000 (the range this machine's users share)."""
    while True:
        port = random.randint(20000, 40000)
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
            return port


@contextmanager
def api_server(backend: str) -> Iterator[ApiServer]:
    server = ApiServer(backend)
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()


@dataclass(slots=True)
class Series:
    http: list[Upload]
    in_process: list[float]  # seconds
    langchain: list[float]
    langchain_pages: int = 0


def measure_backend(
    backend: str, documents: Sequence[tuple[Path, int]], langchain: LangChainPipeline, threads: int
) -> dict[str, Series]:
    settings = load_settings(threads=threads, embedding_backend=backend)
    ours = OurPipeline(settings, make_embedder(settings))
    results: dict[str, Series] = defaultdict(lambda: Series([], [], []))
    with api_server(backend) as server:
        first = documents[0][0]
        server.upload(first)  # first-call costs (kernels, worker start) out of the runs
        ours.run(first)
        for path, repeats in documents:
            series = results[path.name]
            for repeat in range(repeats):
                series.http.append(server.upload(path))
                series.in_process.append(ours.run(path).total_s)
                run = langchain.run(path)
                series.langchain.append(run.total_s)
                series.langchain_pages = run.pages
                progress(
                    f"{backend} {path.name} #{repeat + 1}: http {series.http[-1].seconds:.1f} s, "
                    f"in-process {series.in_process[-1]:.1f} s, langchain {run.total_s:.1f} s"
                )
    return dict(results)


def figures(
    measured: dict[str, dict[str, Series]], documents: dict[str, Sequence[tuple[Path, int]]]
) -> list[Figure]:
    """Pages/s through the API beside LangChain's, per backend and document; the default
    backend's are the headline."""
    found = []
    for backend, series_by_doc in measured.items():
        for path, _ in documents[backend]:
            s = series_by_doc[path.name]
            pages = s.http[0].pages
            http_s = [u.seconds for u in s.http]
            found.append(
                Figure(
                    "Ingest",
                    f"{path.name} through the API ({backend}), pages/s",
                    pages / median(http_s),
                    "pages/s",
                    "LangChain",
                    s.langchain_pages / median(s.langchain),
                    paired_ratio=paired_ratio(
                        [pages / t for t in http_s], [s.langchain_pages / t for t in s.langchain]
                    ),
                    headline=backend == BACKENDS[0],
                    digits=2,
                )
            )
    return found


def render(
    measured: dict[str, dict[str, Series]],
    documents: dict[str, Sequence[tuple[Path, int]]],
    *,
    threads: int,
    command: str,
    machine: str,
    load: str,
    total_s: float,
) -> str:
    rows: list[list[object]] = []
    lines: list[str] = []
    for backend, series_by_doc in measured.items():
        for path, repeats in documents[backend]:
            s = series_by_doc[path.name]
            pages = s.http[0].pages
            http_s = [u.seconds for u in s.http]
            vs_langchain = paired_ratio(
                [pages / t for t in http_s], [s.langchain_pages / t for t in s.langchain]
            )
            vs_in_process = paired_ratio(http_s, s.in_process)
            stages = " / ".join(
                f"{median([u.stages_ms[k] for u in s.http]) / 1000:.2f}" for k in STAGES
            )
            rows.append(
                [
                    f"`{backend}`",
                    path.name,
                    pages,
                    s.http[0].chunks,
                    repeats,
                    f"{median(http_s):.2f}",
                    f"**{pages / median(http_s):.2f}**",
                    stages,
                    f"{median(s.in_process):.2f}",
                    f"{vs_in_process:.2f}x",
                    f"{median(s.langchain):.2f}",
                    f"{s.langchain_pages / median(s.langchain):.2f}",
                    f"**{vs_langchain:.2f}x**",
                ]
            )
            verdicts = (
                f"{'meets' if vs_langchain >= TARGET_SPEEDUP else 'misses'} the "
                f"{TARGET_SPEEDUP:g}x target; HTTP/in-process {vs_in_process:.2f}x, "
                f"{'within' if vs_in_process <= TARGET_HTTP_SLOWDOWN else 'over'} "
                f"{TARGET_HTTP_SLOWDOWN:g}x"
            )
            lines.append(
                f"- `{backend}`, {path.name}: through the API **{vs_langchain:.2f}x** "
                f"LangChain's pages/s ({verdicts})"
            )
    table = markdown_table(
        [
            "embedder",
            "document",
            "pages",
            "chunks",
            "rounds",
            "HTTP upload s",
            "HTTP pages/s",
            "server stages s (parse / OCR / chunk / embed / index)",
            "in-process s",
            "HTTP / in-process",
            "LangChain s",
            "LangChain pages/s",
            "HTTP vs LangChain pages/s",
        ],
        rows,
    )
    return f"""## Uploads through the API against LangChain

**Ours through the API**: a warm `pgpt serve` per embedder backend (its own process,
started with only `PGPT_EMBEDDING_BACKEND` set, `PGPT_THREADS` at its default {threads}); each
round creates a session, posts the file as the UI does (multipart `files`) and times the
request on the client; the server's own stage timings come from the upload's answer
(`timings`). **In-process**: `rag.pipeline.Ingestor` of the same backend in the benchmark's
process (the breakdown, not the headline). **LangChain**: PyPDFLoader,
RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings (same model, float32),
FAISS, in the benchmark's process with {threads} threads. The three alternate within each
round; medians; ratios are medians of paired rounds.

{table}

{chr(10).join(lines)}

Machine load during the run: {load}. The two cores are shared with other work, so the
absolute seconds move with the load; the ratios compare runs made side by side.

Command (from the repository root; {total_s / 60:.1f} min wall in total):

```
{command}
```

Machine: {machine}
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) at the end"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument(
        "--long-backends",
        nargs="*",
        default=[BACKENDS[0]],
        help="backends also measured on the 10-Ks (default: the default embedder)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds per short PDF")
    parser.add_argument("--long-repeats", type=int, default=3, help="rounds per 10-K")
    parser.add_argument("--ten-ks", nargs="*", default=list(TEN_KS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    clock = Stopwatch()
    configure_threads(args.threads)
    machine = describe_machine(args.threads).describe()
    get_parser_pool().warm_up()
    langchain = LangChainPipeline(langchain_baseline.make_embeddings())
    langchain.run(PDFS / DEFAULT_PDFS[0])
    short = [(PDFS / name, args.repeats) for name in DEFAULT_PDFS]
    long = [(FINANCEBENCH_PDFS / name, args.long_repeats) for name in args.ten_ks]
    documents: dict[str, Sequence[tuple[Path, int]]] = {
        b: short + (long if b in args.long_backends else []) for b in args.backends
    }
    measured: dict[str, dict[str, Series]] = {}
    for backend in args.backends:
        progress(f"{backend}: starting pgpt serve")
        measured[backend] = measure_backend(backend, documents[backend], langchain, args.threads)
    command = command_line("benchmarks.ingest_http", argv)
    report = render(
        measured,
        documents,
        threads=args.threads,
        command=command,
        machine=machine,
        load=load_average(),
        total_s=clock.elapsed(),
    )
    write_report(report, args.output)
    found = figures(measured, documents)
    write_results(args.output, found, command=command, machine=machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
