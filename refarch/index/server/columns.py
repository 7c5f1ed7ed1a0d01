"""Record metadata held column-wise, so a filter over a million records is a few numpy operations.

Records are addressed by *label*, a small integer the namespace assigns to each vector id. Every
metadata field has one :class:`FieldColumn`. A field that few records carry stays *sparse* (a
dict from label to value, evaluated in Python); once it is common it becomes *dense*: typed
numpy arrays (float64 numbers, int32 string codes, int8 booleans, a presence mask) plus an
inverted index for list-of-strings values. Filters evaluate to boolean masks over labels with
the semantics of :mod:`refarch.index.filters` (the unit tests check the two agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refarch.index.filters import AllOf, AnyOf, Condition, Node, value_compares, value_equals

# A sparse column becomes dense once it holds this many values (or 1/32 of the labels).
_DENSE_MIN = 2048


def _grow(array: np.ndarray, size: int, fill: Any) -> np.ndarray:
    if len(array) >= size:
        return array
    grown = np.full(size, fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class FieldColumn:
    """The values of one metadata field across all labels of a namespace."""

    def __init__(self) -> None:
        self.sparse: dict[int, Any] | None = {}
        self.present = np.zeros(0, dtype=np.bool_)
        self.numbers = np.zeros(0, dtype=np.float64)
        self.codes = np.zeros(0, dtype=np.int32)
        self.bools = np.zeros(0, dtype=np.int8)
        self.code_of: dict[str, int] = {}
        self.lists: dict[int, tuple[str, ...]] = {}
        self.list_index: dict[str, set[int]] = {}

    # -- writing -----------------------------------------------------------------------------

    def _densify(self, capacity: int) -> None:
        values = self.sparse or {}
        self.sparse = None
        self.present = np.zeros(capacity, dtype=np.bool_)
        self.numbers = np.full(capacity, np.nan, dtype=np.float64)
        self.codes = np.full(capacity, -1, dtype=np.int32)
        self.bools = np.full(capacity, -1, dtype=np.int8)
        for label, value in values.items():
            self._set_dense(label, value)

    def ensure(self, capacity: int) -> None:
        """Make room for labels below ``capacity``."""
        if self.sparse is not None:
            return
        self.present = _grow(self.present, capacity, False)
        self.numbers = _grow(self.numbers, capacity, np.nan)
        self.codes = _grow(self.codes, capacity, -1)
        self.bools = _grow(self.bools, capacity, -1)

    def _set_dense(self, label: int, value: Any) -> None:
        self.present[label] = True
        if isinstance(value, bool):
            self.bools[label] = 1 if value else 0
        elif isinstance(value, (int, float)):
            self.numbers[label] = float(value)
        elif isinstance(value, str):
            code = self.code_of.get(value)
            if code is None:
                code = self.code_of[value] = len(self.code_of)
            self.codes[label] = code
        else:
            items = tuple(value)
            self.lists[label] = items
            for item in items:
                self.list_index.setdefault(item, set()).add(label)

    def set(self, label: int, value: Any, capacity: int) -> None:
        """Store ``value`` (already validated) for ``label``, replacing what was there."""
        self.clear(label)
        if self.sparse is not None:
            self.sparse[label] = tuple(value) if isinstance(value, list) else value
            if len(self.sparse) > max(_DENSE_MIN, capacity // 32):
                self._densify(capacity)
            return
        self._set_dense(label, value)

    def clear(self, label: int) -> None:
        """Forget the value of ``label`` (if any)."""
        if self.sparse is not None:
            self.sparse.pop(label, None)
            return
        if label >= len(self.present) or not self.present[label]:
            return
        self.present[label] = False
        self.numbers[label] = np.nan
        self.codes[label] = -1
        self.bools[label] = -1
        items = self.lists.pop(label, None)
        if items:
            for item in items:
                holders = self.list_index.get(item)
                if holders is not None:
                    holders.discard(label)
                    if not holders:
                        del self.list_index[item]

    # -- reading -----------------------------------------------------------------------------

    def _sparse_mask(self, size: int, test: Any) -> np.ndarray:
        mask = np.zeros(size, dtype=np.bool_)
        assert self.sparse is not None
        hits = [label for label, value in self.sparse.items() if label < size and test(value)]
        if hits:
            mask[np.asarray(hits, dtype=np.int64)] = True
        return mask

    def present_mask(self, size: int) -> np.ndarray:
        """Labels that carry this field (any type)."""
        if self.sparse is not None:
            return self._sparse_mask(size, lambda _value: True)
        return self.present[:size].copy()

    def equals_mask(self, size: int, value: str | float | bool) -> np.ndarray:
        """Labels whose value equals ``value`` (list values: any element does)."""
        if self.sparse is not None:
            return self._sparse_mask(size, lambda stored: value_equals(_as_list(stored), value))
        if isinstance(value, bool):
            is_value: np.ndarray = self.bools[:size] == (1 if value else 0)
            return is_value
        if isinstance(value, float):
            is_number: np.ndarray = self.numbers[:size] == value
            return is_number
        code = self.code_of.get(value)
        mask = (self.codes[:size] == code) if code is not None else np.zeros(size, np.bool_)
        holders = self.list_index.get(value)
        if holders:
            labels = np.fromiter(holders, dtype=np.int64, count=len(holders))
            mask[labels[labels < size]] = True
        return mask

    def in_mask(self, size: int, values: tuple[str | float | bool, ...]) -> np.ndarray:
        """Labels whose value equals any of ``values``."""
        mask = np.zeros(size, dtype=np.bool_)
        if self.sparse is None:
            numbers = np.asarray([v for v in values if isinstance(v, float)], dtype=np.float64)
            if len(numbers):
                mask |= np.isin(self.numbers[:size], numbers)
            codes = [self.code_of[v] for v in values if isinstance(v, str) and v in self.code_of]
            if codes:
                mask |= np.isin(self.codes[:size], np.asarray(codes, dtype=np.int32))
            for value in values:
                holders = self.list_index.get(value) if isinstance(value, str) else None
                if holders:
                    labels = np.fromiter(holders, dtype=np.int64, count=len(holders))
                    mask[labels[labels < size]] = True
            return mask
        return self._sparse_mask(
            size, lambda stored: any(value_equals(_as_list(stored), v) for v in values)
        )

    def range_mask(self, size: int, op: str, value: float) -> np.ndarray:
        """Labels whose numeric value satisfies ``op`` (``$gt`` ...) against ``value``."""
        if self.sparse is not None:
            return self._sparse_mask(size, lambda stored: value_compares(stored, op, value))
        numbers = self.numbers[:size]
        with np.errstate(invalid="ignore"):
            if op == "$gt":
                return numbers > value
            if op == "$gte":
                return numbers >= value
            if op == "$lt":
                return numbers < value
            return numbers <= value


def _as_list(stored: Any) -> Any:
    return list(stored) if isinstance(stored, tuple) else stored


class MetadataColumns:
    """All metadata fields of one namespace, by label."""

    def __init__(self) -> None:
        self.capacity = 0
        self.columns: dict[str, FieldColumn] = {}
        # The field names each label carries (shared tuples), to clear a label's old values.
        self.keys_of: list[tuple[str, ...] | None] = []
        self._key_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}

    def ensure(self, capacity: int) -> None:
        """Make room for labels below ``capacity``."""
        if capacity <= self.capacity:
            return
        self.capacity = capacity
        self.keys_of.extend([None] * (capacity - len(self.keys_of)))
        for column in self.columns.values():
            column.ensure(capacity)

    def set(self, label: int, metadata: Mapping[str, Any] | None) -> None:
        """Replace the metadata of ``label`` (values already validated)."""
        self.clear(label)
        if not metadata:
            return
        keys = tuple(sorted(metadata))
        self.keys_of[label] = self._key_tuples.setdefault(keys, keys)
        for key in keys:
            column = self.columns.get(key)
            if column is None:
                column = self.columns[key] = FieldColumn()
            column.set(label, metadata[key], self.capacity)

    def clear(self, label: int) -> None:
        """Forget every metadata value of ``label``."""
        keys = self.keys_of[label] if label < len(self.keys_of) else None
        if not keys:
            return
        for key in keys:
            column = self.columns.get(key)
            if column is not None:
                column.clear(label)
        self.keys_of[label] = None

    def evaluate(self, node: Node, size: int) -> np.ndarray:
        """The labels below ``size`` that pass ``node`` (callers AND it with their live mask)."""
        if isinstance(node, AllOf):
            mask = self.evaluate(node.children[0], size)
            for child in node.children[1:]:
                if not mask.any():
                    break
                mask &= self.evaluate(child, size)
            return mask
        if isinstance(node, AnyOf):
            mask = self.evaluate(node.children[0], size)
            for child in node.children[1:]:
                mask |= self.evaluate(child, size)
            return mask
        return self._condition(node, size)

    def _condition(self, cond: Condition, size: int) -> np.ndarray:
        column = self.columns.get(cond.field)
        negate = cond.op in ("$ne", "$nin") or (cond.op == "$exists" and cond.value is False)
        if column is None:
            mask = np.zeros(size, dtype=np.bool_)
        elif cond.op == "$exists":
            mask = column.present_mask(size)
        elif cond.op in ("$eq", "$ne"):
            mask = column.equals_mask(size, cond.value)
        elif cond.op in ("$in", "$nin"):
            mask = column.in_mask(size, cond.value)
        else:
            mask = column.range_mask(size, cond.op, cond.value)
        return ~mask if negate else mask
