"""The limits every queue adapter enforces, identical to Amazon SQS FIFO queues.

Both adapters check their input here first, so code that works against the local queue does
not start failing when it meets SQS: a batch of 11, a 300 KiB body, a NUL byte or a 200-char
group id is refused locally with the same clear :class:`~refarch.errors.InputError`, and
nothing of a refused batch is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal, overload

from refarch.errors import InputError
from refarch.queue.port import MAX_BATCH, OutgoingMessage

#: Largest body, and largest total of the bodies of one batch, in UTF-8 bytes (SQS: 256 KiB).
MAX_BODY_BYTES = 256 * 1024
#: Longest message group id and deduplication id (SQS: 128 characters).
MAX_ID_CHARS = 128
#: How long a deduplication id suppresses a resend (SQS: 5 minutes).
DEDUP_WINDOW_SECONDS = 300.0
#: Longest visibility timeout (SQS: 12 hours).
MAX_VISIBILITY_SECONDS = 43_200.0
#: Longest long-poll wait of one receive (SQS: 20 seconds).
MAX_WAIT_SECONDS = 20.0
#: Shortest and longest message retention (SQS MessageRetentionPeriod: 1 minute to 14 days).
MIN_RETENTION_SECONDS = 60
MAX_RETENTION_SECONDS = 14 * 86_400
#: SQS's default retention (4 days); the DLQ keeps its messages the longest SQS allows.
DEFAULT_RETENTION_SECONDS = 4 * 86_400
DEFAULT_DLQ_RETENTION_SECONDS = MAX_RETENTION_SECONDS
#: Errors recorded with a dead letter are cut to this many characters (an SQS message
#: attribute counts towards the 256 KiB message size).
MAX_ERROR_CHARS = 4096

# Characters SQS accepts in a body: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
# #x10000-#x10FFFF. Everything else (NUL, other control characters, lone surrogates) is refused.
_INVALID_BODY_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Group and deduplication ids: alphanumerics and punctuation (SQS's rule).
_VALID_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+")
# Queue names: what SQS allows before the ``.fifo`` suffix.
_VALID_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}")


def check_queue_name(name: str) -> str:
    """Return ``name`` if it is a valid queue name (1-75 of ``A-Z a-z 0-9 _ -``)."""
    if not isinstance(name, str) or not _VALID_QUEUE_NAME.fullmatch(name):
        raise InputError(
            f"queue name {name!r} is invalid: use 1 to 75 letters, digits, '-' or '_'"
        )
    return name


def check_max_receives(value: int) -> int:
    """Return ``value`` if it is a valid receive limit (1 to 1000, as SQS's maxReceiveCount)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InputError(f"max_receives={value!r} is invalid: use a whole number from 1 to 1000")
    return value


def check_send_batch(messages: Sequence[OutgoingMessage]) -> None:
    """Refuse a batch SQS would refuse, naming the message (by position) and what is wrong."""
    if isinstance(messages, (str, bytes, OutgoingMessage)):
        raise InputError("send_batch takes a sequence of OutgoingMessage, not a single value")
    count = len(messages)
    if not 1 <= count <= MAX_BATCH:
        raise InputError(f"a batch holds 1 to {MAX_BATCH} messages, got {count}")
    total = 0
    for position, message in enumerate(messages):
        where = f"message {position} of the batch"
        if not isinstance(message, OutgoingMessage):
            raise InputError(f"{where} is a {type(message).__name__}, not an OutgoingMessage")
        total += _check_body(message.body, where)
        _check_id(message.group_id, "group_id", where)
        _check_id(message.dedup_id, "dedup_id", where)
    if total > MAX_BODY_BYTES:
        raise InputError(
            f"the batch's bodies total {total} bytes; a batch may carry at most "
            f"{MAX_BODY_BYTES} bytes (256 KiB): send fewer messages per batch"
        )


def _check_body(body: object, where: str) -> int:
    if not isinstance(body, str):
        raise InputError(f"{where}: body must be a str, got {type(body).__name__}")
    if body == "":
        raise InputError(f"{where}: body is empty (SQS needs at least one character)")
    bad = _INVALID_BODY_CHAR.search(body)
    if bad:
        raise InputError(
            f"{where}: body contains the character U+{ord(bad.group()):04X} at index "
            f"{bad.start()}, which a queue message cannot carry (escape it, e.g. in JSON)"
        )
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise InputError(
            f"{where}: body is {size} bytes in UTF-8; the limit is {MAX_BODY_BYTES} (256 KiB)"
        )
    return size


def _check_id(value: object, field: str, where: str) -> None:
    if not isinstance(value, str) or value == "":
        raise InputError(f"{where}: {field} must be a non-empty str, got {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise InputError(
            f"{where}: {field} is {len(value)} characters; the limit is {MAX_ID_CHARS}"
        )
    if not _VALID_ID.fullmatch(value):
        raise InputError(
            f"{where}: {field} {value!r} may hold only letters, digits and ASCII punctuation"
        )


def check_max_messages(value: int) -> int:
    """Return ``value`` if a receive may ask for that many messages (1 to 10)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH:
        raise InputError(
            f"max_messages={value!r} is invalid: use a whole number from 1 to {MAX_BATCH}"
        )
    return value


def check_timeout(value: float, name: str = "visibility_timeout") -> float:
    """Return ``value`` if it is a valid visibility timeout (0 to 43,200 seconds)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= MAX_VISIBILITY_SECONDS
    ):
        raise InputError(
            f"{name}={value!r} is invalid: use 0 to {MAX_VISIBILITY_SECONDS:.0f} seconds"
        )
    return float(value)


def check_retention(value: float, name: str = "retention_seconds") -> float:
    """Return ``value`` if it is a valid message retention (60 s to 14 days, as on SQS)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not MIN_RETENTION_SECONDS <= value <= MAX_RETENTION_SECONDS
    ):
        raise InputError(
            f"{name}={value!r} is invalid: use {MIN_RETENTION_SECONDS} to "
            f"{MAX_RETENTION_SECONDS} seconds (1 minute to 14 days, as SQS allows)"
        )
    return float(value)


def check_wait(value: float) -> float:
    """Return ``value`` if it is a valid long-poll wait (0 to 20 seconds)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= MAX_WAIT_SECONDS
    ):
        raise InputError(
            f"wait_seconds={value!r} is invalid: use 0 to {MAX_WAIT_SECONDS:.0f} seconds"
        )
    return float(value)


@overload
def check_limit(value: int | None, name: str = ..., *, optional: Literal[False] = ...) -> int: ...


@overload
def check_limit(value: int | None, name: str = ..., *, optional: bool) -> int | None: ...


def check_limit(value: int | None, name: str = "limit", *, optional: bool = False) -> int | None:
    """Return ``value`` if it is a positive whole number (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}={value!r} is invalid: use a whole number of at least 1")
    return value


def check_receipt_handles(handles: Sequence[str]) -> list[str]:
    """Return the distinct receipt handles in order; each must be a non-empty str."""
    if isinstance(handles, (str, bytes)):
        raise InputError("delete takes a sequence of receipt handles, not a single str")
    distinct: list[str] = []
    for handle in handles:
        if not isinstance(handle, str) or handle == "":
            raise InputError(f"receipt handle {handle!r} is not a non-empty str")
        if handle not in distinct:
            distinct.append(handle)
    return distinct


def clean_error(error: str) -> str:
    """The error text to record with a dead letter: characters a message cannot carry are
    replaced by U+FFFD and the text is cut to :data:`MAX_ERROR_CHARS`."""
    if not isinstance(error, str):
        raise InputError(f"error must be a str describing the failure, got {type(error).__name__}")
    cleaned = _INVALID_BODY_CHAR.sub("\ufffd", error) or "(no error text given)"
    if len(cleaned) > MAX_ERROR_CHARS:
        cleaned = cleaned[: MAX_ERROR_CHARS - 14] + " …[truncated]"
    return cleaned
