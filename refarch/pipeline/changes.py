"""The message the relay publishes and the indexer consumes: "product N changed".

A message carries the product id, the version it announces, the operation seen last and when
the change was captured; never the product's text. The indexer re-reads the current row from
Postgres for every message, so a duplicated, reordered, redriven or stale message can only ever
make the index catch up with Postgres, never move it backwards, and a long description cannot
hit a message size limit.

On the queue, each product is its own FIFO message group (``product-<id>``), so no two
indexers ever hold messages for the same product at once, and the deduplication id names the
change (``<source>-<id>-<version>``, plus a run token for backfill and repair) so a relay that
publishes the same outbox rows twice after a crash is deduplicated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from refarch.errors import InputError
from refarch.queue.port import MAX_BATCH, OutgoingMessage, Queue

Op = Literal["upsert", "delete"]
Source = Literal["change", "backfill", "repair"]

#: Largest product id and version: both are Postgres ``bigint``s. A larger number in a message
#: could only fail the SQL that reads the row, taking its batch-mates down with it.
MAX_BIGINT = 2**63 - 1

_OPS: tuple[str, ...] = ("upsert", "delete")
_SOURCES: tuple[str, ...] = ("change", "backfill", "repair")


class MalformedMessageError(InputError):
    """A queue message is not a valid product-change message (it goes to the DLQ at once)."""


@dataclass(frozen=True, slots=True)
class ProductChange:
    """One product changed: the indexer must make the index match Postgres for it."""

    product_id: int
    version: int
    op: Op
    #: When the (earliest coalesced) change was captured in the outbox; for freshness figures.
    changed_at: datetime | None = None
    source: Source = "change"
    #: Distinguishes repeated backfill or repair runs, so SQS deduplication does not drop them.
    run: str | None = None

    @property
    def group_id(self) -> str:
        """The FIFO message group: one per product."""
        return f"product-{self.product_id}"

    @property
    def dedup_id(self) -> str:
        """The deduplication id: the same change published twice is enqueued once."""
        base = f"{self.source}-{self.product_id}-{self.version}"
        return f"{base}-{self.run}" if self.run else base

    def to_json(self) -> str:
        """The message body."""
        body: dict[str, object] = {
            "product_id": self.product_id,
            "version": self.version,
            "op": self.op,
            "source": self.source,
        }
        if self.changed_at is not None:
            body["changed_at"] = self.changed_at.isoformat()
        if self.run:
            body["run"] = self.run
        return json.dumps(body, separators=(",", ":"))

    def to_message(self) -> OutgoingMessage:
        """The queue message for this change."""
        return OutgoingMessage(body=self.to_json(), group_id=self.group_id, dedup_id=self.dedup_id)

    @classmethod
    def from_json(cls, body: str) -> ProductChange:
        """Parse a message body; raises :class:`MalformedMessageError` saying what is wrong."""
        try:
            data = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise MalformedMessageError(f"message body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedMessageError("message body is not a JSON object")
        product_id = data.get("product_id")
        version = data.get("version")
        if not isinstance(product_id, int) or isinstance(product_id, bool) or product_id < 0:
            raise MalformedMessageError(
                f"product_id must be a non-negative integer, got {_shown(product_id)}")
        if product_id > MAX_BIGINT:
            raise MalformedMessageError(
                f"product_id {_shown(product_id)} is out of range: product ids are Postgres "
                f"bigints, at most {MAX_BIGINT}")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedMessageError(f"version must be an integer, got {_shown(version)}")
        if not -MAX_BIGINT - 1 <= version <= MAX_BIGINT:
            raise MalformedMessageError(
                f"version {_shown(version)} of product_id {product_id} is out of range: "
                f"versions are Postgres bigints, at most {MAX_BIGINT}")
        op = data.get("op", "upsert")
        if op not in _OPS:
            raise MalformedMessageError(f"op must be one of {', '.join(_OPS)}, got {op!r}")
        source = data.get("source", "change")
        if source not in _SOURCES:
            raise MalformedMessageError(f"source must be one of {', '.join(_SOURCES)}, got {source!r}")
        changed_at = None
        if data.get("changed_at") is not None:
            try:
                changed_at = datetime.fromisoformat(str(data["changed_at"]))
            except ValueError:
                raise MalformedMessageError(
                    f"changed_at is not an ISO timestamp: {data['changed_at']!r}"
                ) from None
            if changed_at.tzinfo is None:
                changed_at = changed_at.replace(tzinfo=UTC)
        run = data.get("run")
        return cls(product_id, version, op, changed_at, source, str(run) if run else None)


def _shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a hostile number may have 4,000 digits)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    unit = "digits" if isinstance(value, int) else "characters"
    return f"{text[:limit]}... ({len(text)} {unit})"


def publish(queue: Queue, changes: Sequence[ProductChange]) -> int:
    """Send changes in batches of up to 10 (the SQS limit); returns how many were sent.

    Raises :class:`~refarch.errors.QueueError` when the queue does not acknowledge a batch;
    batches sent before it stay sent (duplicates of them later are harmless).
    """
    sent = 0
    for start in range(0, len(changes), MAX_BATCH):
        chunk = changes[start : start + MAX_BATCH]
        queue.send_batch([change.to_message() for change in chunk])
        sent += len(chunk)
    return sent
