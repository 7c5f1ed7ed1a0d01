"""The exception hierarchy of refarch, in one place.

Every error a user can cause (bad configuration, bad input files, a port in use, a missing
binary) is a subclass of :class:`RefarchError` and carries a message that says what was wrong
and, where possible, how to fix it. The CLI prints these without a traceback.
"""

from __future__ import annotations


class RefarchError(Exception):
    """Base class of every error refarch raises on purpose."""


class ConfigError(RefarchError):
    """A setting (environment variable, argument or config value) is missing or invalid."""


class InputError(RefarchError):
    """User input (a file, a product, a query, a filter) is invalid."""


class CatalogFormatError(InputError):
    """A catalog file cannot be read at all (not CSV, not UTF-8, a required column missing)."""


class EmbeddingError(RefarchError):
    """The embedding model cannot be loaded or was given text it cannot embed."""


class EmptyTextError(EmbeddingError, InputError):
    """Empty or whitespace-only text was given to the embedder."""


class DatabaseError(RefarchError):
    """The database cannot be reached, started or used."""


class PostgresRuntimeError(DatabaseError):
    """The local PostgreSQL server cannot be found, initialised, started or stopped."""


class IndexServiceError(RefarchError):
    """The vector index (local server or Pinecone) cannot be reached or used."""


class QueueError(RefarchError):
    """The message queue cannot be reached or used."""


class DeployError(RefarchError):
    """A deployment prerequisite is missing or a Pulumi operation failed."""
