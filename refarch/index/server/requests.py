"""Validate what clients send, with Pinecone's limits and errors that say exactly what is wrong.

Everything here raises :class:`~refarch.index.server.api_errors.ApiError` (400) naming the bad
part (``vectors[3].metadata.tags[1]``), and never touches stored data: a request is checked
completely before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from refarch.errors import FilterError
from refarch.index.filters import Node, describe, parse_filter
from refarch.index.server.api_errors import ApiError, bad_request

#: Pinecone's limits (docs.pinecone.io, "Database limits").
MAX_UPSERT_VECTORS = 1_000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40_960
MAX_ID_LENGTH = 512
MAX_NAMESPACE_LENGTH = 512
MAX_TOP_K = 10_000
MAX_IDS_PER_REQUEST = 1_000
MAX_LIST_LIMIT = 100
MAX_DIMENSION = 20_000
MAX_RESULT_BYTES = 4 * 1024 * 1024
#: Longest pagination token accepted (the server's own are well under 1,500 characters).
MAX_TOKEN_LENGTH = 4_096
#: The name requests may use for the namespace they address when they omit one.
DEFAULT_NAMESPACE_ALIAS = "__default__"


def _show(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # nested deeper than orjson writes (254 levels)
        text = describe(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _name(key: str) -> str:
    """A metadata field name for a message, shortened when long."""
    return key if len(key) <= 40 else key[:37] + "..."


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (its size was limited while it was read, see
    :mod:`refarch.index.server.limits`)."""
    if not body:
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise bad_request(f"The request body must be a JSON object, got {_show(parsed)}")
    return parsed


def namespace(value: Any) -> str:
    """A namespace name (``None``, ``""`` and ``"__default__"`` are the default namespace)."""
    if value is None or value == DEFAULT_NAMESPACE_ALIAS:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"namespace must be a string, got {_show(value)}")
    if len(value) > MAX_NAMESPACE_LENGTH:
        raise bad_request(
            f"namespace is {len(value)} characters long; the maximum is {MAX_NAMESPACE_LENGTH}"
        )
    if not value.isascii() or "\x00" in value:
        raise bad_request(f"namespace {_show(value)} must contain only ASCII characters (no NUL)")
    return value


def vector_id(value: Any, where: str) -> str:
    """A record id: 1-512 ASCII characters without NUL."""
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a string, got {_show(value)}")
    if not value:
        raise bad_request(f"{where} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise bad_request(
            f"{where} is {len(value)} characters long; the maximum is {MAX_ID_LENGTH}"
        )
    if not value.isascii() or "\x00" in value:
        raise bad_request(f"{where} {_show(value)} must contain only ASCII characters (no NUL)")
    return value


def id_list(value: Any, where: str) -> list[str]:
    """A non-empty list of at most 1,000 ids."""
    if not isinstance(value, list) or not value:
        raise bad_request(f"{where} must be a non-empty list of ids")
    if len(value) > MAX_IDS_PER_REQUEST:
        raise bad_request(
            f"{where} has {len(value)} ids; the maximum per request is {MAX_IDS_PER_REQUEST:,}"
        )
    return [vector_id(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _check_row(row: Any, dim: int, where: str) -> None:
    if not isinstance(row, list):
        raise bad_request(f"{where} must be a list of numbers, got {_show(row)}")
    if len(row) != dim:
        raise bad_request(f"Vector dimension {len(row)} does not match the dimension of the "
                          f"index {dim} ({where})")


def values_matrix(rows: list[Any], dim: int, where: str, allow_zero: bool = False) -> np.ndarray:
    """Dense values as a float32 (n, dim) array; rejects wrong lengths, non-numbers, non-finite
    values and (unless ``allow_zero``) all-zero vectors, naming the first bad one.

    ``where`` is a format string for the location of row ``i``, e.g. ``"vectors[{}].values"``.
    """
    for i, row in enumerate(rows):
        _check_row(row, dim, where.format(i))
    try:
        with np.errstate(over="ignore"):
            matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
    except (TypeError, ValueError):
        for i, row in enumerate(rows):
            for j, x in enumerate(row):
                if isinstance(x, bool) or not isinstance(x, (int, float)):
                    raise bad_request(
                        f"{where.format(i)}[{j}] must be a number, got {_show(x)}"
                    ) from None
        raise bad_request(f"{where.format('*')} must be lists of numbers") from None
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise bad_request(f"{where.format(i)} contains a value that is not a finite 32-bit float")
    nonzero = np.any(matrix != 0, axis=1)
    if not allow_zero and not nonzero.all():
        i = int(np.flatnonzero(~nonzero)[0])
        raise bad_request(f"Dense vectors must contain at least one non-zero value "
                          f"({where.format(i)} is all zeros)")
    return matrix


def _metadata_value(value: Any, where: str, key: str) -> Any:
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise bad_request(f"{where}: metadata numbers must be finite, got {_show(value)} "
                              f"for field '{_name(key)}'")
        return number  # Pinecone stores every number as a 64-bit float
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise bad_request(
                    f"{where}: Metadata value must be a string, number, boolean or list of "
                    f"strings, got {_show(value)} for field '{_name(key)}' (element {i} is "
                    f"{_show(item)})"
                )
        return value
    if value is None:
        raise bad_request(
            f"{where}: Metadata value must be a string, number, boolean or list of strings, "
            f"got null for field '{_name(key)}'. Null values are not supported; leave the field out"
        )
    raise bad_request(
        f"{where}: Metadata value must be a string, number, boolean or list of strings, got "
        f"{_show(value)} for field '{_name(key)}'"
    )


def metadata(value: Any, where: str) -> tuple[dict[str, Any] | None, str | None]:
    """Validated metadata and its compact JSON (``(None, None)`` when absent or empty)."""
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise bad_request(f"{where} must be an object, got {_show(value)}")
    if not value:
        return None, None
    for key in value:
        if not isinstance(key, str) or key.startswith("$"):
            raise bad_request(
                f"{where}: metadata field names must be strings that do not start with '$', "
                f"got {_show(key)}"
            )
    checked = {key: _metadata_value(item, where, key) for key, item in value.items()}
    encoded = orjson.dumps(checked)
    if len(encoded) > MAX_METADATA_BYTES:
        raise bad_request(
            f"Metadata size is {len(encoded)} bytes, which exceeds the limit of "
            f"{MAX_METADATA_BYTES} bytes per vector ({where})"
        )
    return checked, encoded.decode()


def top_k(value: Any) -> int:
    """``topK``: a whole number from 1 to 10,000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"topK must be a whole number from 1 to {MAX_TOP_K:,}, got {_show(value)}")
    if not 1 <= value <= MAX_TOP_K:
        raise bad_request(f"topK must be between 1 and {MAX_TOP_K:,}, got {value}")
    return value


def flag(body: Mapping[str, Any], key: str) -> bool:
    """An optional boolean field (default false)."""
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{key} must be true or false, got {_show(value)}")
    return value


def metadata_filter(value: Any) -> Node | None:
    """A Pinecone metadata filter, parsed (``None`` matches everything)."""
    try:
        return parse_filter(value)
    except FilterError as exc:
        raise bad_request(f"Invalid filter: {exc}") from None


def reject_sparse(body: Mapping[str, Any], key: str) -> None:
    """Dense-only indexes refuse sparse values, as Pinecone does without a sparse field."""
    if body.get(key) is not None:
        raise bad_request(
            f"{key} is not supported: this index has only a dense vector field (the local "
            f"index server implements dense indexes)"
        )


def limit(value: Any, default: int, maximum: int, name: str = "limit") -> int:
    """A page size from 1 to ``maximum``."""
    if value is None:
        return default
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError(value)
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise bad_request(f"{name} must be a whole number, got {_show(value)}") from None
    if not 1 <= number <= maximum:
        raise bad_request(f"{name} must be between 1 and {maximum}, got {number}")
    return number


def pagination_token(value: Any) -> str | None:
    """An optional ``paginationToken``: a string from a previous page."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LENGTH:
        raise bad_request(
            f"paginationToken must be the string a previous page returned, got {_show(value)}"
        )
    return value


def require(condition: bool, message: str) -> None:
    """Raise a 400 with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ApiError(400, message)
