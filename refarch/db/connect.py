"""Opening connections to the database, and showing its URL without the password.

Which database the settings mean (``DATABASE_URL`` or the local server) is decided in
:func:`refarch.bootstrap.database_url`.
"""

from __future__ import annotations

from typing import Any, LiteralString, TypeVar

import psycopg

from refarch.errors import DatabaseError
from refarch.redact import redact_url

__all__ = ["connect", "redact_url", "scalar"]

_T = TypeVar("_T")


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a psycopg 3 connection to ``url``.

    Raises :class:`DatabaseError` naming the server (password hidden) when it cannot connect.
    Extra keyword arguments go to :func:`psycopg.connect`.
    """
    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(redact_url(
            f"cannot connect to {url}: {str(exc).strip()} "
            "(is the server running? `refarch db start` starts the local one)"
        )) from exc


def scalar(conn: psycopg.Connection[Any], query: LiteralString, kind: type[_T]) -> _T:
    """The one value ``query`` returns (``SELECT count(*) ...``), checked to be a ``kind``.

    Raises :class:`DatabaseError` when the query returns no row or a value of another type
    (e.g. NULL).
    """
    row = conn.execute(query).fetchone()
    value = row[0] if row else None
    if not isinstance(value, kind):
        raise DatabaseError(f"{query!r} returned {value!r}, not a {kind.__name__}")
    return value
