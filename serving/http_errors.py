"""The error table: our errors (core/errors.py) -> HTTP status and the JSON error body."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
from rag.retrieval import Hit
from serving import responses

log = logging.getLogger(__name__)

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
    status.HTTP_401_UNAUTHORIZED: models.ErrorType.AUTHENTICATION,
    status.HTTP_404_NOT_FOUND: models.ErrorType.NOT_FOUND,
    status.HTTP_503_SERVICE_UNAVAILABLE: models.ErrorType.SERVICE_UNAVAILABLE,
    status.HTTP_507_INSUFFICIENT_STORAGE: models.ErrorType.INSUFFICIENT_CAPACITY,
}


def error_type(code: int) -> models.ErrorType:
    fallback = models.ErrorType.SERVER if code >= 500 else models.ErrorType.INVALID_REQUEST
    return ERROR_TYPES.get(code, fallback)


def error_response(code: int, error_code: str, message: str, **extra: Any) -> JSONResponse:
    detail = models.ErrorDetail(code=error_code, message=message, type=error_type(code))
    body = {"error": detail.model_dump(), **extra}
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return JSONResponse(body, status_code=code, headers=headers)


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
