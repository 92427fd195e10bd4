"""A small synchronous client of the REST API that returns the API's own models."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from core.api_models import (
    ClientConfig,
    DocumentList,
    DocumentOut,
    ErrorBody,
    Health,
    PageImageInfo,
    PageText,
    QueryRequest,
    QueryResult,
    SessionCreated,
    TokenChunk,
    UnavailableBody,
    UploadProgress,
    UploadResult,
    VerifyRequest,
    VerifyResult,
)

# Parsing and embedding a long PDF on a CPU can take minutes; answers stream for as long.
UPLOAD_TIMEOUT = httpx.Timeout(10.0, read=900.0, write=300.0)
ANSWER_TIMEOUT = httpx.Timeout(10.0, read=600.0)
QUICK_TIMEOUT = httpx.Timeout(10.0)
PAGE_TIMEOUT = httpx.Timeout(10.0, read=60.0)  # the server gives up on a page far sooner
HEALTH_TIMEOUT = httpx.Timeout(3.0)


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """What happened to one file: the document it became, or why it was refused."""

    filename: str
    document: DocumentOut | None = None
    error: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class PageImage:
    """A rendered PDF page: the PNG and, from the X-Page-View header, its highlight boxes."""

    png: bytes
    info: PageImageInfo

    def __repr__(self) -> str:
        return f"PageImage(page {self.info.page}, {len(self.png)} bytes)"


PageView = PageImage | PageText


# A streamed answer, as the API's own models: text as it is generated, then the result,
# or the error with the passages found anyway (none when it failed mid-stream).
AnswerEvent = TokenChunk | QueryResult | UnavailableBody


class ApiError(Exception):
    """The API answered with an error body ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class SessionExpiredError(ApiError):
    """The server no longer knows the session (expired, or the server restarted)."""


class ApiUnreachableError(Exception):
    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(
            f"Cannot reach the PrivateGPT++ API at {base_url} ({reason}). "
            "Start it with `pgpt serve`, or everything with `pgpt up`."
        )
        self.message = str(self)


def api_error(response: httpx.Response) -> ApiError:
    try:
        detail = ErrorBody.model_validate_json(response.content).error
        code, message = detail.code, detail.message
    except ValidationError:
        code, message = "http_error", f"The API answered {response.status_code}."
    cls = SessionExpiredError if response.status_code == 404 and "session" in code else ApiError
    return cls(response.status_code, code, message)


class ApiClient:
    """The PrivateGPT++ REST API, one method per route the page uses."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=QUICK_TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, type(exc).__name__) from None
        if response.status_code >= 400:
            raise api_error(response)
        return response

    def health(self) -> Health:
        response = self._request("GET", "/healthz", timeout=HEALTH_TIMEOUT)
        return Health.model_validate_json(response.content)

    def config(self) -> ClientConfig:
        """The server's limits, formats and answer settings (what the page needs of them)."""
        response = self._request("GET", "/v1/config")
        return ClientConfig.model_validate_json(response.content)

    def create_session(self) -> SessionCreated:
        response = self._request("POST", "/v1/sessions")
        return SessionCreated.model_validate_json(response.content)

    def delete_session(self, session_id: str) -> None:
        self._request("DELETE", f"/v1/sessions/{session_id}")

    def clear_conversation(self, session_id: str) -> None:
        """Start the server's conversation over (follow-ups stop referring back)."""
        self._request("DELETE", f"/v1/sessions/{session_id}/conversation")

    def documents(self, session_id: str) -> list[DocumentOut]:
        response = self._request("GET", f"/v1/sessions/{session_id}/documents")
        return DocumentList.model_validate_json(response.content).documents

    def remove_document(self, session_id: str, document_id: str) -> None:
        self._request("DELETE", f"/v1/sessions/{session_id}/documents/{document_id}")

    def page(
        self,
        session_id: str,
        document_id: str,
        page: int,
        *,
        span: tuple[int, int] | None,
        width: int,
    ) -> PageView:
        """One page with ``span`` (page offsets) highlighted: a PDF page as an image, other
        documents as the text around the span."""
        params = {"width": width} | ({"start": span[0], "end": span[1]} if span else {})
        response = self._request(
            "GET",
            f"/v1/sessions/{session_id}/documents/{document_id}/pages/{page}",
            params=params,
            timeout=PAGE_TIMEOUT,
        )
        if response.headers.get("content-type") == "image/png":
            info = PageImageInfo.model_validate_json(response.headers["x-page-view"])
            return PageImage(response.content, info)
        return PageText.model_validate_json(response.content)

    def upload(
        self,
        session_id: str,
        filename: str,
        data: bytes,
        *,
        password: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> UploadOutcome:
        """Send one file; a refused file is an outcome with its error, not an exception.

        Raises SessionExpiredError and ApiUnreachableError, which concern every file.
        """
        try:
            response = self._request(
                "POST",
                f"/v1/sessions/{session_id}/documents",
                files=[("files", (filename, data, media_type))],
                data={"password": password} if password else None,
                timeout=UPLOAD_TIMEOUT,
            )
        except SessionExpiredError:
            raise
        except ApiError as exc:  # e.g. 413 too large, 415 unsupported type, 422 unreadable
            return UploadOutcome(filename, error=exc.message, code=exc.code)
        return outcome_of(filename, UploadResult.model_validate_json(response.content))

    def upload_with_progress(
        self,
        session_id: str,
        filename: str,
        data: bytes,
        on_progress: Callable[[UploadProgress], None],
        *,
        password: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> UploadOutcome:
        """Send one file as a streamed upload: ``on_progress`` gets the OCR page counts of
        a scan as they come; the outcome is as for ``upload``."""
        try:
            with self._http.stream(
                "POST",
                f"/v1/sessions/{session_id}/documents",
                params={"stream": "true"},
                files=[("files", (filename, data, media_type))],
                data={"password": password} if password else None,
                timeout=UPLOAD_TIMEOUT,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    error = api_error(response)
                    if isinstance(error, SessionExpiredError):
                        raise error
                    return UploadOutcome(filename, error=error.message, code=error.code)
                for event, payload in parse_sse(response.iter_lines()):
                    if event == "progress":
                        on_progress(UploadProgress.model_validate_json(payload))
                    elif event == "done":
                        return outcome_of(filename, UploadResult.model_validate_json(payload))
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, type(exc).__name__) from None
        return UploadOutcome(filename, error="The server ended the upload without a result.")

    def verify(self, session_id: str, request: VerifyRequest) -> VerifyResult:
        """Each sentence of the request's text checked against the session's documents."""
        response = self._request(
            "POST",
            f"/v1/sessions/{session_id}/verify",
            json=request.model_dump(mode="json"),
            timeout=ANSWER_TIMEOUT,  # a search per sentence, then the verifier, on a CPU
        )
        return VerifyResult.model_validate_json(response.content)

    def ask(self, session_id: str, request: QueryRequest) -> Iterator[AnswerEvent]:
        """Stream the answer (the request is sent streamed): TokenChunks, then the QueryResult
        (or UnavailableBody).

        Raises SessionExpiredError, ApiError and ApiUnreachableError before the first event.
        """
        path = f"/v1/sessions/{session_id}/query"
        streamed = request.model_copy(update={"stream": True})
        payload = streamed.model_dump(mode="json", exclude_none=True)
        try:
            with self._http.stream("POST", path, json=payload, timeout=ANSWER_TIMEOUT) as response:
                if response.status_code == 503:
                    response.read()
                    yield UnavailableBody.model_validate_json(response.content)
                    return
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                yield from answer_events(parse_sse(response.iter_lines()))
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, type(exc).__name__) from None


def outcome_of(filename: str, result: UploadResult) -> UploadOutcome:
    """The outcome of a one-file upload from the API's result."""
    if result.documents:
        return UploadOutcome(filename, document=result.documents[0])
    if result.errors:
        error = result.errors[0]
        return UploadOutcome(filename, error=error.message, code=error.code)
    return UploadOutcome(filename, error="The server returned no result for this file.")


def answer_events(events: Iterable[tuple[str, str]]) -> Iterator[AnswerEvent]:
    """The SSE events of a streamed answer (``token``, ``done``, ``error``) as API models."""
    for event, data in events:
        if event == "token":
            yield TokenChunk.model_validate_json(data)
        elif event == "done":
            yield QueryResult.model_validate_json(data)
        elif event == "error":
            yield UnavailableBody(error=ErrorBody.model_validate_json(data).error, sources=[])


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream; multi-line data is joined with newlines."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue  # a comment (keep-alive)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)
