"""The one error hierarchy of PrivateGPT++.

Each error carries a stable machine-readable ``code`` and a message written for
the person who caused it: which file, what is wrong, what to do. Mapping to
HTTP status codes and UI messages happens at the edges (``serving/http_errors.py``,
``app.py``), never here.
"""

from __future__ import annotations


class PGPTError(Exception):
    """Base class: every error we raise on purpose."""

    code: str = "internal_error"

    def __init__(self, message: str, *, filename: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename


class ConfigError(PGPTError):
    code = "invalid_config"


# --- bad input: the user's file cannot be used -------------------------------


class DocumentError(PGPTError):
    """A file that cannot be ingested; nothing else in the session is touched."""

    code = "invalid_document"


class UnsupportedFileTypeError(DocumentError):
    code = "unsupported_file_type"


class FileTooLargeError(DocumentError):
    code = "file_too_large"


class EmptyDocumentError(DocumentError):
    code = "empty_document"


class PasswordRequiredError(DocumentError):
    code = "password_required"


class WrongPasswordError(DocumentError):
    code = "wrong_password"


class ProtectedDocumentError(DocumentError):
    """Encrypted in a way we cannot open at all (a password-protected Office file)."""

    code = "password_protected"


class CorruptDocumentError(DocumentError):
    code = "corrupt_document"


class NoTextLayerError(DocumentError):
    code = "no_text_layer"


class DocumentTooComplexError(DocumentError):
    """Too many pages, too much text, or parsing took longer than allowed."""

    code = "document_too_complex"


# --- sessions and capacity ---------------------------------------------------


class NotFoundError(PGPTError):
    code = "not_found"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"


class SessionUnavailableError(PGPTError):
    """The api replica holding the session is not answering. Said by the proxy in front of
    the replicas (deploy/haproxy.py renders it into HAProxy's config), never by the api."""

    code = "session_unavailable"


class DocumentNotFoundError(NotFoundError):
    code = "document_not_found"


class PageNotFoundError(NotFoundError):
    code = "page_not_found"


class CapacityError(PGPTError):
    """A per-session or global limit would be exceeded; retry after freeing space."""

    code = "capacity_exceeded"


# --- page view -----------------------------------------------------------------


class RenderBusyError(PGPTError):
    """Another page is being rendered (one at a time per session); retry in a moment."""

    code = "render_busy"


class RenderTimeoutError(PGPTError):
    """One page took longer to render than allowed."""

    code = "render_timeout"


# --- answer generation -------------------------------------------------------


class GeneratorUnavailableError(PGPTError):
    """The LLM server is down or still starting; retrieval still works."""

    code = "generator_unavailable"


class QuestionTooLongError(PGPTError):
    """The question alone does not fit the model's context."""

    code = "question_too_long"


# --- requests ------------------------------------------------------------------


class InvalidRequestError(PGPTError):
    """A request that is malformed apart from its documents (e.g. broken multipart framing)."""

    code = "invalid_request"


class UnsupportedMediaTypeError(PGPTError):
    code = "unsupported_media_type"
