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


class FieldValidationError(InputError):
    """One field of a product (or another form) is invalid; ``field`` names it, e.g. ``"price"``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ProductNotFoundError(InputError):
    """The product asked for does not exist (any more)."""


class EditConflictError(InputError):
    """The product changed since it was read; the edit was not applied (reload and retry)."""


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


class MigrationError(DatabaseError):
    """The schema migrations are inconsistent (an applied file was edited, numbering clashes)."""


class IndexServiceError(RefarchError):
    """The vector index (local server or Pinecone) cannot be reached or used."""


class IndexRejectedError(IndexServiceError):
    """The vector index refused a request's content (a bad record or filter), not an outage:
    retrying the same request cannot succeed. ``status`` is the HTTP status it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FilterError(InputError):
    """A metadata filter is malformed (unknown operator, wrong operand type, bad nesting)."""


class QueueError(RefarchError):
    """The message queue cannot be reached or used."""


class StaleReceiptError(QueueError):
    """A receipt handle is no longer current: the message was deleted, dead-lettered, or its
    visibility timeout expired (after which another consumer may have received it)."""


class QueueBatchError(QueueError):
    """Part of a batch call failed; the rest succeeded.

    ``failures`` maps each failed entry (a receipt handle, or a message's position in the batch
    as a string) to the reason; ``succeeded`` lists the entries that went through.
    """

    def __init__(self, message: str, failures: dict[str, str], succeeded: list[str]) -> None:
        super().__init__(message)
        self.failures = failures
        self.succeeded = succeeded


class DeployError(RefarchError):
    """A deployment prerequisite is missing or a Pulumi operation failed."""
