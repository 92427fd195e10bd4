"""The REST API: sessions, documents, search and grounded answers over FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response, status
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
    UnsupportedFileTypeError,
    UnsupportedMediaTypeError,
)
from core.settings import Settings, get_settings
from ingest.loader import get_parser_pool, shutdown_parser_pool
from rag.answer import DoneEvent, TokenEvent
from rag.embedding import Embedder
from rag.generation import Generator, GeneratorStatus
from rag.retrieval import Hit
from rag.sessions import Session, SessionStore
from serving import responses
from serving.uploads import read_upload_form
from serving.wiring import Services, build_services

log = logging.getLogger(__name__)

EVICTION_INTERVAL_S = 30.0

STATUS_BY_ERROR: list[tuple[type[PGPTError], int]] = [
    (FileTooLargeError, status.HTTP_413_CONTENT_TOO_LARGE),
    (UnsupportedFileTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (UnsupportedMediaTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (DocumentError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (QuestionTooLongError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidRequestError, status.HTTP_400_BAD_REQUEST),
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (CapacityError, status.HTTP_507_INSUFFICIENT_STORAGE),
    (GeneratorUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ConfigError, status.HTTP_500_INTERNAL_SERVER_ERROR),
]


def status_for(error: PGPTError) -> int:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def error_response(code: int, error_code: str, message: str, **extra: Any) -> JSONResponse:
    body = {"error": {"code": error_code, "message": message}, **extra}
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


def get_session(session_id: str, services: ServicesDep) -> Session:
    return services.store.get(session_id)


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
    request: Request, session: SessionDep, services: ServicesDep
) -> JSONResponse:
    """Add files to the session; each file that fails is reported and the rest are kept.

    200 when at least one file was added; when none was, the first file's error status.
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
    result = models.UploadResult(documents=[], errors=[])
    first_failure: PGPTError | None = None
    for upload in form.files:
        try:
            info, _ = await asyncio.to_thread(
                services.ingestor.ingest, session, upload.data, upload.filename, password=password
            )
        except (DocumentError, CapacityError) as exc:
            first_failure = first_failure or exc
            filename = exc.filename or upload.filename
            result.errors.append(
                models.FileError(filename=filename, code=exc.code, message=exc.message)
            )
            continue
        result.documents.append(responses.document_out(info))
    if first_failure is not None and not result.documents:
        # Nothing was added: the request failed, with the first file's reason as status.
        return error_response(
            status_for(first_failure),
            first_failure.code,
            first_failure.message,
            **result.model_dump(mode="json"),
        )
    return JSONResponse(result.model_dump(mode="json"))


@v1.get("/sessions/{session_id}/documents")
def list_documents(session: SessionDep) -> models.DocumentList:
    return models.DocumentList(
        documents=[responses.document_out(d) for d in session.documents.values()]
    )


@v1.delete("/sessions/{session_id}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(document_id: str, session: SessionDep) -> Response:
    session.remove_document(document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
    settings = services.settings
    hits, retrieval_ms = await services.engine.retrieve(
        session, body.question, top_k=body.top_k, score_threshold=settings.score_threshold
    )
    events = services.engine.stream(
        body.question,
        hits,
        max_tokens=body.max_tokens or settings.answer_max_tokens,
        temperature=settings.temperature if body.temperature is None else body.temperature,
        retrieval_ms=retrieval_ms,
        mode=body.answer_mode or settings.answer_mode,
    )
    try:
        # Pull the first event before answering, so an unreachable generator is a clean 503.
        first = await anext(events)
    except GeneratorUnavailableError as exc:
        return unavailable_response(exc, hits)
    if not body.stream:
        done = first
        async for event in events:
            done = event
        assert isinstance(done, DoneEvent)
        return JSONResponse(responses.query_result(done.answer).model_dump(mode="json"))
    return StreamingResponse(
        sse_events(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def unavailable_response(exc: GeneratorUnavailableError, hits: list[Hit]) -> JSONResponse:
    sources = [responses.numbered_passage(n, h).model_dump() for n, h in enumerate(hits, 1)]
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE, exc.code, exc.message, sources=sources
    )


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def sse_events(
    first: TokenEvent | DoneEvent, rest: AsyncIterator[TokenEvent | DoneEvent]
) -> AsyncIterator[str]:
    """``token`` events with text, then one ``done`` event with the full result (or ``error``)."""

    async def all_events() -> AsyncIterator[TokenEvent | DoneEvent]:
        yield first
        async for event in rest:
            yield event

    try:
        async for event in all_events():
            if isinstance(event, TokenEvent):
                yield sse("token", models.TokenChunk(text=event.text).model_dump())
            else:
                yield sse("done", responses.query_result(event.answer).model_dump(mode="json"))
    except PGPTError as exc:
        yield sse("error", {"error": {"code": exc.code, "message": exc.message}})


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
