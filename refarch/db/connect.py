"""Connections to the database: which URL the settings mean, and opening one.

``ensure_database(settings)`` is the one place that decides between an existing server
(``DATABASE_URL``, nothing is started) and the local server (started if needed). It does not
create tables; run :func:`refarch.db.migrations.migrate` for that.
"""

from __future__ import annotations

import re
from typing import Any, LiteralString, TypeVar

import psycopg

from refarch.db.server import LocalPostgres
from refarch.errors import DatabaseError
from refarch.settings import Settings

_T = TypeVar("_T")


def ensure_database(settings: Settings) -> str:
    """Return the libpq URL of the database for ``settings``.

    With ``DATABASE_URL`` set, that URL is returned and nothing is started. Otherwise the local
    server under ``REFARCH_HOME`` is started (initialised on first use; a no-op when it already
    runs) and its unix-socket URL is returned.
    """
    if settings.database_url:
        return settings.database_url
    return LocalPostgres.from_settings(settings).start().url


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    url = re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a psycopg 3 connection to ``url``.

    Raises :class:`DatabaseError` naming the server (password hidden) when it cannot connect.
    Extra keyword arguments go to :func:`psycopg.connect`.
    """
    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {redact_url(url)}: {str(exc).strip()} "
            "(is the server running? `refarch db start` starts the local one)"
        ) from exc


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
