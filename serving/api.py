"""The REST API: sessions, documents, search and grounded answers over FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import api_models as models
from core.errors import (
    CapacityError,
    ConfigError,
    DocumentError,
    FileTooLargeError,
    GeneratorUnavailableError,
    InvalidRequestError,
    NotFoundError,
    PGPTError,
    QuestionTooLongError,
    RenderBusyError,
    RenderTimeoutError,
    UnsupportedFileTypeError,
    UnsupportedMediaTypeError,
)
from core.settings import AnswerMode, Settings, get_settings
from ingest.loader import get_parser_pool, shutdown_parser_pool
from ingest.ocr import PageProgress
from ingest.page_view import PageImage, view_page
from rag.answer import Answer, AnswerEvent, DoneEvent, TokenEvent
from rag.conversation import Turn, latest
from rag.embedding import Embedder
from rag.generation import Generator, GeneratorStatus
from rag.retrieval import Hit
from rag.sessions import Session, SessionStore
from serving import openai_compat, responses
from serving.uploads import read_upload_form
from serving.wiring import Services, build_services

log = logging.getLogger(__name__)

EVICTION_INTERVAL_S = 30.0
SERVED_SINCE = int(time.time())  # the `created` of the one model /models lists

STATUS_BY_ERROR: list[tuple[type[PGPTError], int]] = [
    (FileTooLargeError, status.HTTP_413_CONTENT_TOO_LARGE),
    (UnsupportedFileTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (UnsupportedMediaTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (DocumentError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (QuestionTooLongError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidRequestError, status.HTTP_400_BAD_REQUEST),
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (CapacityError, status.HTTP_507_INSUFFICIENT_STORAGE),
    (RenderBusyError, status.HTTP_429_TOO_MANY_REQUESTS),
    (RenderTimeoutError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (GeneratorUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ConfigError, status.HTTP_500_INTERNAL_SERVER_ERROR),
]


def status_for(error: PGPTError) -> int:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


# OpenAI's error ``type`` for each status, so OpenAI clients classify our errors.
ERROR_TYPES = {
    status.HTTP_401_UNAUTHORIZED: "authentication_error",
    status.HTTP_404_NOT_FOUND: "not_found_error",
    status.HTTP_503_SERVICE_UNAVAILABLE: "service_unavailable_error",
    status.HTTP_507_INSUFFICIENT_STORAGE: "insufficient_capacity_error",
}


def error_type(code: int) -> str:
    return ERROR_TYPES.get(code, "server_error" if code >= 500 else "invalid_request_error")


def error_response(code: int, error_code: str, message: str, **extra: Any) -> JSONResponse:
    detail = models.ErrorDetail(code=error_code, message=message, type=error_type(code))
    body = {"error": detail.model_dump(), **extra}
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return JSONResponse(body, status_code=code, headers=headers)


# --- dependencies --------------------------------------------------------------


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def require_api_key(request: Request, services: ServicesDep) -> None:
    expected = services.settings.api_key
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise StarletteHTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing or wrong API key: send 'Authorization: Bearer <key>'.",
        )


def get_session(session_id: str, services: ServicesDep) -> Iterator[Session]:
    # FastAPI runs the code after `yield` once the response is sent, streams included.
    with services.store.use(session_id) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# --- routes ---------------------------------------------------------------------

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": models.ErrorBody},
    404: {"model": models.ErrorBody},
    422: {"model": models.ErrorBody},
}

v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)


def iso(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


@v1.post("/sessions", status_code=status.HTTP_201_CREATED)
def create_session(services: ServicesDep, response: Response) -> models.SessionCreated:
    session = services.store.create()
    # Lets a load balancer pin the session to this replica (sessions live in its memory).
    response.headers["Location"] = f"/v1/sessions/{session.id}"
    return models.SessionCreated(session_id=session.id, expires_at=iso(session.expires_at))


@v1.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_session(session_id: str, services: ServicesDep) -> Response:
    services.store.delete(session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@v1.delete("/sessions/{session_id}/conversation", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(session: SessionDep) -> Response:
    """Start the conversation over; the documents stay."""
    session.conversation.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "password": {"type": "string", "description": "for encrypted PDFs"},
                    },
                }
            }
        },
    }
}


@v1.post(
    "/sessions/{session_id}/documents",
    response_model=models.UploadResult,
    openapi_extra=UPLOAD_SCHEMA,
    responses={413: {"model": models.ErrorBody}, 415: {"model": models.ErrorBody}},
)
async def upload_documents(
    request: Request, session: SessionDep, services: ServicesDep, stream: bool = False
) -> Response:
    """Add files to the session; each file that fails is reported and the rest are kept.

    200 when at least one file was added; when none was, the first file's error status.
    With ``stream=true`` the answer is an SSE stream: ``progress`` events (pages read by
    OCR so far, for long scans), a ``document`` or ``error`` event per file, then ``done``
    with the same body as the JSON answer.
    """
    form = await read_upload_form(
        request,
        file_field="files",
        max_file_bytes=services.settings.max_upload_bytes,
        max_files=services.settings.max_files_per_upload,
    )
    if not form.files:
        raise InvalidRequestError("No file received: send one or more parts named 'files'.")
    password = form.fields.get("password") or None
    files = [(upload.filename, upload.data) for upload in form.files]
    form.files.clear()  # the list below is now the only reference to the bytes
    if stream:
        return StreamingResponse(
            upload_events(services, session, files, password),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    result = models.UploadResult(documents=[], errors=[])
    first_failure: PGPTError | None = None
    for filename, data in files:
        outcome = await ingest_one(services, session, filename, data, password, None)
        if isinstance(outcome, models.DocumentOut):
            result.documents.append(outcome)
        else:
            first_failure = first_failure or outcome[1]
            result.errors.append(outcome[0])
    files.clear()
    if first_failure is not None and not result.documents:
        # Nothing was added: the request failed, with the first file's reason as status.
        return error_response(
            status_for(first_failure),
            first_failure.code,
            first_failure.message,
            **result.model_dump(mode="json"),
        )
    return JSONResponse(result.model_dump(mode="json"))


async def ingest_one(
    services: Services,
    session: Session,
    filename: str,
    data: bytes,
    password: str | None,
    progress: PageProgress | None,
) -> models.DocumentOut | tuple[models.FileError, PGPTError]:
    """One file into the session: its document, or its error (the session is unchanged)."""
    try:
        info, _ = await asyncio.to_thread(
            services.ingestor.ingest, session, data, filename, password=password, progress=progress
        )
    except (DocumentError, CapacityError) as exc:
        error = models.FileError(
            filename=exc.filename or filename, code=exc.code, message=exc.message
        )
        return error, exc
    return responses.document_out(info)


def progress_reporter(
    loop: asyncio.AbstractEventLoop,
    updates: asyncio.Queue[models.UploadProgress | None],
    filename: str,
    index: int,
    total: int,
) -> PageProgress:
    """A progress callback for the ingest thread that hands page counts to the event loop."""

    def report(done: int, pages: int) -> None:
        update = models.UploadProgress(
            filename=filename, file_index=index, files=total, pages_done=done, pages_total=pages
        )
        loop.call_soon_threadsafe(updates.put_nowait, update)

    return report


def end_updates(updates: asyncio.Queue[models.UploadProgress | None], _: object) -> None:
    updates.put_nowait(None)


async def upload_events(
    services: Services, session: Session, files: list[tuple[str, bytes]], password: str | None
) -> AsyncIterator[str]:
    """SSE for a streamed upload: ``progress`` (OCR pages done of total) while a file is
    read, then its ``document`` or ``error``; finally ``done`` with the whole result.
    Progress travels as page counts only: nothing of the document leaves memory."""
    loop = asyncio.get_running_loop()
    result = models.UploadResult(documents=[], errors=[])
    total = len(files)
    for index in range(total):
        filename, data = files[index]
        files[index] = (filename, b"")  # drop our reference as soon as the file is handed on
        updates: asyncio.Queue[models.UploadProgress | None] = asyncio.Queue()

        report = progress_reporter(loop, updates, filename, index, total)
        task = asyncio.create_task(ingest_one(services, session, filename, data, password, report))
        del data
        # Progress is queued from the worker thread before the task ends, so None comes last.
        task.add_done_callback(functools.partial(end_updates, updates))
        while (update := await updates.get()) is not None:
            yield sse("progress", update.model_dump(mode="json"))
        outcome = await task
        if isinstance(outcome, models.DocumentOut):
            result.documents.append(outcome)
            yield sse("document", outcome.model_dump(mode="json"))
        else:
            result.errors.append(outcome[0])
            yield sse("error", outcome[0].model_dump(mode="json"))
    yield sse("done", result.model_dump(mode="json"))


@v1.get("/sessions/{session_id}/documents")
def list_documents(session: SessionDep) -> models.DocumentList:
    return models.DocumentList(
        documents=[responses.document_out(d) for d in session.documents.values()]
    )


@v1.delete("/sessions/{session_id}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(document_id: str, session: SessionDep) -> Response:
    session.remove_document(document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/png": {},
            "application/json": {"schema": models.PageText.model_json_schema()},
        },
        "description": "A PDF page as PNG (X-Page-View header: size and highlight rectangles); "
        "for other documents, the text around the span as JSON.",
    },
    429: {"model": models.ErrorBody},
    503: {"model": models.ErrorBody},
}


@v1.get("/sessions/{session_id}/documents/{document_id}/pages/{page}", responses=PAGE_RESPONSES)
async def show_page(
    document_id: str,
    page: int,
    session: SessionDep,
    services: ServicesDep,
    start: Annotated[int | None, Query(ge=0, description="Span start, in page offsets.")] = None,
    end: Annotated[int | None, Query(ge=1, description="Span end (exclusive).")] = None,
    width: Annotated[int, Query(ge=100, description="Image width in pixels.")] = 800,
) -> Response:
    """One page with the span ``start``-``end`` (a citation's page offsets) highlighted."""
    settings = services.settings
    if (start is None) != (end is None):
        raise InvalidRequestError("Give the span as both 'start' and 'end', or neither.")
    if width > settings.render_max_width_px:
        raise InvalidRequestError(
            f"width {width} is too wide: pages render at most {settings.render_max_width_px} "
            "pixels wide."
        )
    _, source = session.source(document_id)
    if not session.render_lock.acquire(blocking=False):
        raise RenderBusyError("Another page of this session is being drawn. Try again shortly.")
    try:
        view = await asyncio.to_thread(
            view_page,
            source,
            page,
            span=None if start is None or end is None else (start, end),
            width=width,
            timeout_s=settings.render_timeout_s,
        )
    finally:
        session.render_lock.release()
    headers = {"Cache-Control": "no-store"}
    if isinstance(view, PageImage):
        headers["X-Page-View"] = responses.page_image_info(view).model_dump_json()
        return Response(view.png, media_type="image/png", headers=headers)
    return JSONResponse(responses.page_text(view).model_dump(mode="json"), headers=headers)


@v1.post("/sessions/{session_id}/search")
async def search(
    body: models.SearchRequest, session: SessionDep, services: ServicesDep
) -> models.SearchResult:
    hits, _ = await services.engine.retrieve(
        session, body.query, top_k=body.top_k, score_threshold=services.settings.score_threshold
    )
    return models.SearchResult(results=[responses.passage(h) for h in hits])


@v1.post(
    "/sessions/{session_id}/query",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream"},
        503: {"model": models.UnavailableBody},
    },
)
async def query(body: models.QueryRequest, session: SessionDep, services: ServicesDep) -> Response:
    history = session.conversation.turns() if body.use_conversation else []
    started = await start_answer(
        services,
        session,
        body.question,
        history,
        top_k=body.top_k,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        mode=body.answer_mode,
    )
    if isinstance(started, JSONResponse):
        return started
    standalone, events, hits = started.standalone, started.events, started.hits
    if body.use_conversation:
        events = recorded(events, session, body.question, standalone)
    if not body.stream:
        try:
            answer = await last_answer(events)
        except GeneratorUnavailableError as exc:  # the model died mid-answer
            return unavailable_response(exc, hits)
        result = responses.query_result(answer, standalone)
        return JSONResponse(result.model_dump(mode="json"))
    return event_stream(sse_events(events, standalone, hits))


@v1.post(
    "/sessions/{session_id}/chat/completions",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "chat.completion, or chat.completion.chunk events when stream",
        },
        503: {"model": models.UnavailableBody},
    },
)
async def chat_completions(
    body: models.ChatCompletionRequest, session: SessionDep, services: ServicesDep
) -> Response:
    """OpenAI-compatible: point an OpenAI client's ``base_url`` at ``/v1/sessions/<id>``.

    The conversation comes from ``messages`` (the session's own conversation is not used
    or changed); citations, sources and claims are in the extra top-level field ``pgpt``.
    """
    question, history = openai_compat.conversation(body.messages)
    started = await start_answer(
        services,
        session,
        question,
        history,
        top_k=services.settings.top_k,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
    )
    if isinstance(started, JSONResponse):
        return started
    standalone, events = started.standalone, started.events
    completion = openai_compat.CompletionIds.new()
    if not body.stream:
        try:
            answer = await last_answer(events)
        except GeneratorUnavailableError as exc:  # the model died mid-answer
            return unavailable_response(exc, started.hits)
        done = openai_compat.completion(completion, answer, standalone)
        return JSONResponse(done.model_dump(mode="json"))
    model = (
        openai_compat.answered_by(started.first.answer)  # answered at once: no model needed
        if isinstance(started.first, DoneEvent)
        else (await services.generator.info()).model  # known by now: the model is writing
    )
    return event_stream(openai_compat.chunk_events(events, completion, model, standalone))


@v1.get("/sessions/{session_id}/models")
def list_models(session: SessionDep) -> models.ModelList:
    """The one model an OpenAI client can pick here: answers from this session's documents."""
    card = models.ModelCard(id=models.CHAT_MODEL_ID, created=SERVED_SINCE)
    return models.ModelList(data=[card])


@dataclass(frozen=True, slots=True)
class Started:
    """An answer under way: the question as searched, its events, the passages it uses."""

    standalone: str
    events: AsyncIterator[AnswerEvent]
    hits: list[Hit]
    first: AnswerEvent  # also the first of ``events``


async def start_answer(
    services: Services,
    session: Session,
    question: str,
    history: list[Turn],
    *,
    top_k: int,
    max_tokens: int | None,
    temperature: float | None,
    mode: AnswerMode | None = None,
) -> Started | JSONResponse:
    """Rewrite a follow-up, retrieve, and begin the answer, or a 503 (with the passages)
    when the generator cannot be reached."""
    settings = services.settings
    standalone = await services.rewriter.rewrite(question, history)
    hits, retrieval_ms = await services.engine.retrieve(
        session, standalone, top_k=top_k, score_threshold=settings.score_threshold
    )
    events = services.engine.stream(
        question,
        hits,
        max_tokens=max_tokens or settings.answer_max_tokens,
        temperature=settings.temperature if temperature is None else temperature,
        retrieval_ms=retrieval_ms,
        history=latest(history, settings.conversation_prompt_turns),
        mode=mode or settings.answer_mode,
        standalone=standalone,
    )
    try:
        # Pull the first event before answering, so an unreachable generator is a clean 503.
        first = await anext(events)
    except GeneratorUnavailableError as exc:
        return unavailable_response(exc, hits)
    return Started(standalone, chained(first, events), hits, first)


async def chained(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent]
) -> AsyncIterator[AnswerEvent]:
    yield first
    async for event in rest:
        yield event


async def last_answer(events: AsyncIterator[AnswerEvent]) -> Answer:
    """The final answer. The stream is read to its end (the DoneEvent is its last event)
    so that its generators finish now and release what they hold, such as earlier turns."""
    answer: Answer | None = None
    async for event in events:
        if isinstance(event, DoneEvent):
            answer = event.answer
    if answer is None:
        raise AssertionError("an answer stream always ends with a DoneEvent")
    return answer


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def unavailable_body(exc: PGPTError, hits: list[Hit]) -> models.UnavailableBody:
    return models.UnavailableBody(
        error=models.ErrorDetail(
            code=exc.code, message=exc.message, type=error_type(status_for(exc))
        ),
        sources=[responses.numbered_passage(n, h) for n, h in enumerate(hits, 1)],
    )


def unavailable_response(exc: GeneratorUnavailableError, hits: list[Hit]) -> JSONResponse:
    return JSONResponse(
        unavailable_body(exc, hits).model_dump(mode="json"),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def recorded(
    events: AsyncIterator[AnswerEvent], session: Session, question: str, standalone: str
) -> AsyncIterator[AnswerEvent]:
    """The events, with the finished answer added to the session's conversation."""
    async for event in events:
        if isinstance(event, DoneEvent):
            session.conversation.add(responses.turn(question, standalone, event.answer))
        yield event


async def sse_events(
    events: AsyncIterator[AnswerEvent], standalone: str, hits: list[Hit]
) -> AsyncIterator[str]:
    """``token`` events with text, then one ``done`` event with the full result, or one
    ``error`` event with the retrieved passages: the tokens so far are not an answer."""
    try:
        async for event in events:
            if isinstance(event, TokenEvent):
                yield sse("token", models.TokenChunk(text=event.text).model_dump())
            else:
                result = responses.query_result(event.answer, standalone)
                yield sse("done", result.model_dump(mode="json"))
    except PGPTError as exc:
        yield sse("error", unavailable_body(exc, hits).model_dump(mode="json"))


# --- app ----------------------------------------------------------------------------


async def evict_periodically(store: SessionStore) -> None:
    while True:
        await asyncio.sleep(EVICTION_INTERVAL_S)
        store.evict_expired()


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings, embedder=embedder, generator=generator)
        app.state.services = services
        # Start the parser processes now, not on the first upload.
        await asyncio.to_thread(get_parser_pool().warm_up)
        evictor = asyncio.create_task(evict_periodically(services.store))
        try:
            yield
        finally:
            evictor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await evictor
            services.store.close_all()
            await services.generator.aclose()
            # Here, not only at exit: uvicorn re-raises SIGTERM after shutting down, which
            # ends the process before exit hooks run and would orphan the parser workers.
            shutdown_parser_pool()

    app = FastAPI(
        title="PrivateGPT++",
        version="0.1.0",
        summary="Questions answered from your private documents, held in memory only.",
        lifespan=lifespan,
    )
    app.include_router(v1)

    @app.get("/healthz")
    async def healthz(services: ServicesDep) -> models.Health:
        generator = models.GeneratorHealth(status=await services.generator.status())
        if generator.status == GeneratorStatus.READY:
            with contextlib.suppress(GeneratorUnavailableError):
                info = await services.generator.info()
                generator.model, generator.context_length = info.model, info.context_length
        e = services.embedder
        return models.Health(
            status="ok",
            generator=generator,
            embedder=models.EmbedderHealth(model=e.name, device=e.device, dtype=e.dtype),
            sessions=len(services.store),
        )

    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PGPTError)
    async def on_pgpt_error(_: Request, exc: PGPTError) -> JSONResponse:
        return error_response(status_for(exc), exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
        return error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Only locations and reasons: the rejected input (a question) is never echoed or logged.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_request", problems)

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The type only: messages of library errors can quote document text.
        log.error("unexpected %s while handling a request", type(exc).__name__)
        return error_response(500, "internal_error", "Something went wrong on the server.")
