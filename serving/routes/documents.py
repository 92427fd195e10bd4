"""Documents: upload (JSON or an SSE stream of progress), list, delete, and show a page."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from core import api_models as models
from core.errors import (
    CapacityError,
    DocumentError,
    InvalidRequestError,
    PGPTError,
    RenderBusyError,
)
from ingest.ocr import PageProgress
from ingest.page_view import PageImage, view_page
from ingest.upload import Upload
from rag.sessions import Session
from serving import responses
from serving.http_errors import error_response, status_for
from serving.routes.deps import ServicesDep, SessionDep, sse
from serving.uploads import read_upload_form
from serving.wiring import Services

router = APIRouter()

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


@router.post(
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
    files = list(form.files)
    form.files.clear()  # the list below is now the only reference to the bytes
    if stream:
        return StreamingResponse(
            upload_events(services, session, files, password),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    result = models.UploadResult(documents=[], errors=[])
    first_failure: PGPTError | None = None
    for upload in files:
        outcome = await ingest_one(services, session, upload, password, None)
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
    upload: Upload,
    password: str | None,
    progress: PageProgress | None,
) -> models.DocumentOut | tuple[models.FileError, PGPTError]:
    """One file into the session: its document, or its error (the session is unchanged)."""
    try:
        info, timings = await asyncio.to_thread(
            services.ingestor.add, session, upload, password=password, progress=progress
        )
    except (DocumentError, CapacityError) as exc:
        error = models.FileError(
            filename=exc.filename or upload.name, code=exc.code, message=exc.message
        )
        return error, exc
    return responses.document_out(info, timings)


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
    services: Services, session: Session, files: list[Upload], password: str | None
) -> AsyncIterator[str]:
    """SSE for a streamed upload: ``progress`` (OCR pages done of total) while a file is
    read, then its ``document`` or ``error``; finally ``done`` with the whole result.
    Progress travels as page counts only: nothing of the document leaves memory."""
    loop = asyncio.get_running_loop()
    result = models.UploadResult(documents=[], errors=[])
    total = len(files)
    for index in range(total):
        upload = files[index]
        files[index] = Upload(upload.name, b"")  # drop our reference once it is handed on
        updates: asyncio.Queue[models.UploadProgress | None] = asyncio.Queue()

        report = progress_reporter(loop, updates, upload.name, index, total)
        task = asyncio.create_task(ingest_one(services, session, upload, password, report))
        del upload
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


@router.get("/sessions/{session_id}/documents")
def list_documents(session: SessionDep) -> models.DocumentList:
    return models.DocumentList(
        documents=[responses.document_out(d) for d in session.documents.values()]
    )


@router.delete(
    "/sessions/{session_id}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT
)
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


@router.get("/sessions/{session_id}/documents/{document_id}/pages/{page}", responses=PAGE_RESPONSES)
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
