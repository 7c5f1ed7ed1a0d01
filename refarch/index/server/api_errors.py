"""Errors the local index server answers with, in the shape Pinecone uses.

Pinecone's API answers a failed request with a status code and a JSON body
``{"error": {"code": "INVALID_ARGUMENT", "message": "..."}, "status": 400}``; the SDK turns the
status into its exception class (``NotFoundError`` for 404, ``UnauthorizedError`` for 401, ...)
and the body's message into the exception's message. Raising :class:`ApiError` anywhere in the
server produces exactly that.
"""

from __future__ import annotations

from typing import Any

#: Pinecone's error code for each status this server uses.
CODES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    413: "PAYLOAD_TOO_LARGE",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """A request the server refuses: HTTP ``status`` with a message saying what was wrong."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        """The JSON body Pinecone sends for this error."""
        return {"error": {"code": self.code, "message": self.message}, "status": self.status}


def bad_request(message: str) -> ApiError:
    """A 400 INVALID_ARGUMENT error."""
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    """A 404 NOT_FOUND error."""
    return ApiError(404, message)
