"""The ``pgpt`` command line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.errors import DocumentError, GeneratorUnavailableError, PGPTError

if TYPE_CHECKING:
    from rag.retrieval import Hit
    from rag.sessions import Session
    from serving.wiring import Services


@click.group()
def main() -> None:
    """PrivateGPT++: private document question answering."""


@main.command("vllm")
@click.option("--host", default=None, help="Listen address [default: PGPT_VLLM_HOST or 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: PGPT_VLLM_PORT or 8001].")
@click.option(
    "--prepare-only", is_flag=True, help="Only convert the bundled model into the cache, then exit."
)
def vllm_command(host: str | None, port: int | None, prepare_only: bool) -> None:
    """Run the embedded vLLM CPU server in the foreground until Ctrl-C."""
    import os
    import signal
    import time

    from core.settings import load_settings
    from serving.launcher import EmbeddedVLLM, prepare_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        settings = load_settings()
        if settings.vllm_url:
            raise click.ClickException(
                f"An external vLLM server is configured (PGPT_VLLM_URL={settings.vllm_url}); "
                "nothing to run here. Unset PGPT_VLLM_URL to use the embedded server."
            )
        model_path = prepare_model(settings)
        click.echo(f"Model ready in {model_path}", err=True)
        if prepare_only:
            return

        def _terminate(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # SIGTERM (docker stop, kill) takes the same clean path as Ctrl-C.
        signal.signal(signal.SIGTERM, _terminate)
        server = EmbeddedVLLM(settings, host=host, port=port, model_path=model_path)
        click.echo(f"Starting vLLM on {server.url} ...", err=True)
        try:
            with server:
                click.echo(f"vLLM is ready on {server.url} (Ctrl-C to stop).", err=True)
                while server.is_running():
                    time.sleep(1.0)
                raise click.ClickException(
                    f"vLLM exited unexpectedly. Last output:\n{server.output_tail()}"
                )
        except KeyboardInterrupt:
            click.echo("vLLM stopped.", err=True)
    except PGPTError as exc:
        raise click.ClickException(exc.message) from None


@main.command("embedder")
@click.option(
    "--prepare-only",
    is_flag=True,
    help="Only build the ONNX copies of the bundled embedding model into the cache, then exit.",
)
def embedder_command(prepare_only: bool) -> None:
    """Build the ONNX embedding models once, then embed a test batch with the configured one."""
    import os
    import time

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from core.settings import load_settings
    from rag.embedding_build import prepare_onnx_model

    try:
        settings = load_settings()
        click.echo(f"ONNX embedding models ready in {prepare_onnx_model(settings)}", err=True)
        if prepare_only:
            return
        from rag.embedding import make_embedder, resolve_backend

        embedder = make_embedder(settings)
        texts = [f"Test sentence number {n} for the embedder." for n in range(64)]
        embedder.embed(texts[:1])  # the first call pays for one-time setup
        started = time.perf_counter()
        embedder.embed(texts)
        seconds = time.perf_counter() - started
        click.echo(
            f"{resolve_backend(settings)}: {embedder.name} on {embedder.device} in "
            f"{embedder.dtype}, {embedder.dimension} dimensions, "
            f"{len(texts) / seconds:.0f} short texts/s with {settings.threads} threads"
        )
    except PGPTError as exc:
        raise click.ClickException(exc.message) from None


# --- retrieval and answers from the command line -------------------------------


def _ingest_files(files: tuple[Path, ...], password: str | None) -> tuple[Services, Session]:
    """Load the models and ingest the files into a fresh in-memory session."""
    from core.settings import load_settings
    from serving.wiring import build_services

    services = build_services(load_settings())
    session = services.store.create()
    for path in files:
        try:
            info, _ = services.ingestor.ingest(
                session, path.read_bytes(), path.name, password=password
            )
        except DocumentError as exc:
            click.secho(f"skipped {path.name}: {exc.message}", fg="yellow", err=True)
            continue
        click.echo(f"indexed {info.filename}: {info.pages} pages, {info.chunks} chunks", err=True)
    if not session.documents:
        raise click.ClickException("None of the files could be read.")
    return services, session


def _print_passages(hits: Sequence[Hit]) -> None:
    for n, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        preview = " ".join(chunk.text.split())[:160]
        click.echo(f"[{n}] {chunk.filename}  page {chunk.pages_label}  score {hit.score:.3f}")
        click.echo(f"    {preview}")


files_argument = click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
top_k_option = click.option("-k", "--top-k", default=5, show_default=True, help="Passages.")
password_option = click.option("--password", default=None, help="Password for encrypted PDFs.")


@main.command("search")
@files_argument
@click.option("-q", "--question", required=True, help="What to search for.")
@top_k_option
@password_option
def search_command(
    files: tuple[Path, ...], question: str, top_k: int, password: str | None
) -> None:
    """Show the passages of FILES that best match the question (retrieval only)."""
    services, session = _ingest_files(files, password)

    async def search() -> None:
        try:
            _print_passages(await services.answers.search(session, question, top_k))
        finally:
            await services.aclose()

    asyncio.run(search())


@main.command("ask")
@files_argument
@click.option(
    "-q",
    "--question",
    "questions",
    multiple=True,
    help="What to ask; repeat it for follow-ups. Without it: ask at the prompt, one question "
    "per line, until an empty line.",
)
@top_k_option
@password_option
def ask_command(
    files: tuple[Path, ...], questions: tuple[str, ...], top_k: int, password: str | None
) -> None:
    """Answer questions from FILES, with citations (needs a running vLLM server).

    One conversation: a follow-up ("and its training?") is searched with what came before.
    """
    services, session = _ingest_files(files, password)

    async def conversation() -> None:
        try:
            for question in questions or _prompted_questions():
                await _answer(services, session, question, top_k)
        finally:
            await services.aclose()

    asyncio.run(conversation())


def _prompted_questions() -> Iterator[str]:
    while True:
        try:
            question = click.prompt("\nQuestion", default="", show_default=False).strip()
        except click.Abort:  # end of input
            return
        if not question:
            return
        yield question


async def _answer(services: Services, session: Session, question: str, top_k: int) -> None:
    """Stream one answer, then what was shown and its sources; on a dead model, the best
    passages and exit status 1."""
    from rag.answer import AnswerKind, TokenEvent
    from rag.answering import AskOptions

    asked = await services.answers.ask(session, question, AskOptions(top_k=top_k))
    if asked.standalone != question:
        click.echo(f"(searched as: {asked.standalone})", err=True)
    try:
        async for event in asked.events:
            if isinstance(event, TokenEvent):
                click.echo(event.text, nl=False)
            else:
                shown = event.answer
                if shown.kind is not AnswerKind.GENERATED or shown.removed:
                    label = "Quoted from your documents" if shown.kind == "quoted" else "Shown"
                    click.echo(f"\n\n{label}: {shown.text}")
                    if shown.removed:
                        click.echo(f"({shown.removed} unsupported sentence(s) removed)")
                    if shown.not_found_reason:
                        click.echo(shown.not_found_reason)
                    unbacked = (AnswerKind.UNANSWERED, AnswerKind.EVIDENCE)
                    for claim in shown.claims if shown.kind in unbacked else []:
                        click.echo(f"The model's draft, not backed: {claim.text}")
                click.echo("\n\nSources:")
                _print_passages(event.answer.sources)
    except GeneratorUnavailableError as exc:
        click.secho(
            f"{exc.message}\nStart one with `pgpt vllm` or set PGPT_VLLM_URL. The best passages:",
            fg="yellow",
            err=True,
        )
        _print_passages(asked.hits)
        raise SystemExit(1) from None


@main.command("serve")
@click.option("--host", default=None, help="Listen address [default: PGPT_API_HOST].")
@click.option("--port", type=int, default=None, help="Port [default: PGPT_API_PORT].")
def serve_command(host: str | None, port: int | None) -> None:
    """Run the REST API (it does not start vLLM; /search works without one)."""
    from core.settings import load_settings
    from core.threads import configure_threads

    settings = load_settings()
    # Before FAISS, torch or uvicorn load: they size their thread pools when they do.
    configure_threads(settings.threads)
    import uvicorn

    from serving.app import create_app

    # No access log: URLs carry session ids, which are bearer secrets.
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,  # an in-flight upload must not hold a stop forever
    )


@main.command("up")
@click.option(
    "--verbose", is_flag=True, help="Show vLLM's full log (default: warnings and errors only)."
)
def up_command(verbose: bool) -> None:
    """Run everything on this machine: embedded vLLM (unless PGPT_VLLM_URL), API and web UI."""
    from core.settings import load_settings
    from serving.stack import run_stack

    run_stack(load_settings(), verbose=verbose)


if __name__ == "__main__":
    main()
