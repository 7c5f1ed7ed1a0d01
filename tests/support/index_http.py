"""Checking the local index server's answers over plain HTTP."""

from __future__ import annotations

from typing import Any

import httpx

#: Pinecone's error code for each status the tests expect.
CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
         413: "PAYLOAD_TOO_LARGE"}


def assert_api_error(response: httpx.Response, status: int, fragment: str) -> dict[str, Any]:
    """``response`` is Pinecone's error shape, ``{"error": {"code", "message"}, "status"}``, with
    ``status`` and a message containing ``fragment``; returns the body."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["status"] == status
    assert body["error"]["code"] == CODES.get(status, body["error"]["code"])
    assert body["error"]["code"]
    assert fragment in body["error"]["message"], body
    return body
