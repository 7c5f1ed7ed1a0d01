"""Pinecone metadata filters: parse them (with errors that say what is wrong) and evaluate them.

:func:`parse_filter` turns the JSON a client sends into a small tree of :class:`Condition`,
:class:`AllOf` and :class:`AnyOf` nodes, rejecting anything Pinecone does not accept, with a
message that points at the offending part (``filter["price"]["$gt"] must be a number, got
'cheap'``). :func:`matches` evaluates a tree against one record's metadata; it is the executable
statement of the semantics below. The local server evaluates the same trees column-wise
(:mod:`refarch.index.server.columns`), and the unit tests check both agree.

Semantics (Pinecone's, with the ambiguous cases decided; see ``docs/vector-index.md``):

* Metadata values are strings, numbers (compared as 64-bit floats, so ``5 == 5.0``), booleans
  or lists of strings. Comparisons are typed: ``5`` never equals ``"5"`` and ``true`` never
  equals ``1``.
* ``{"f": v}`` is ``{"f": {"$eq": v}}``; several fields, or several operators on one field, are
  combined with AND; ``$and`` / ``$or`` take a non-empty list of filters.
* ``$eq``/``$ne`` take a string, number or boolean; ``$gt $gte $lt $lte`` a number (they never
  match a non-number); ``$in``/``$nin`` a list of strings and numbers (at most 10,000);
  ``$exists`` a boolean.
* A list-valued field matches ``$eq``/``$in`` when any element matches; ``$ne``/``$nin`` match
  only when no element does.
* A missing field matches no positive condition; ``$ne``, ``$nin`` and ``$exists: false`` match
  it (they are exact negations of ``$eq``, ``$in`` and ``$exists: true``, as in MongoDB, whose
  query language Pinecone's is based on).
* An empty filter ``{}`` matches everything.

Limits (so a hostile filter costs bounded work and never exhausts the stack): at most
:data:`MAX_FILTER_DEPTH` levels (the filter object is level 1, each ``$and`` / ``$or`` adds one)
and :data:`MAX_FILTER_CONDITIONS` field conditions in all; ``$in`` / ``$nin`` count as one
condition each, with at most :data:`MAX_IN_VALUES` values.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from refarch.errors import FilterError

#: Operators that compare one field with a value.
FIELD_OPERATORS: tuple[str, ...] = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
)
#: Operators that combine filters.
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or")
#: Most values ``$in`` / ``$nin`` accept (Pinecone's limit).
MAX_IN_VALUES = 10_000
#: Most levels a filter may nest: the filter object is level 1; each ``$and`` / ``$or`` adds one.
MAX_FILTER_DEPTH = 16
#: Most field conditions (``{"field": {"$op": value}}`` pairs) one filter may hold.
MAX_FILTER_CONDITIONS = 1_000

_RANGE_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})


@dataclass(frozen=True, slots=True)
class Condition:
    """One field compared with a value: ``value`` is a float for numbers, a tuple for ``$in``."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every child matches (``$and``, or implicit AND)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one child matches (``$or``)."""

    children: tuple[Node, ...]


Node: TypeAlias = Condition | AllOf | AnyOf


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 50, 50


def describe(value: Any) -> str:
    """A short ``repr`` of a client's value for an error message; never recurses deeply, so a
    hostile, deeply nested value cannot exhaust the stack."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Budget:
    """Counts the field conditions parsed so far, refusing the one past the limit."""

    __slots__ = ("conditions",)

    def __init__(self) -> None:
        self.conditions = 0

    def take(self, where: str) -> None:
        self.conditions += 1
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise FilterError(
                f"the filter has more than {MAX_FILTER_CONDITIONS:,} conditions (at {where}); "
                f"split the request, or use $in with a list of values"
            )


def _path(path: str, key: str) -> str:
    shown = key if len(key) <= 40 else key[:37] + "..."
    return f"{path}[{shown!r}]".replace("'", '"')


def _scalar(value: Any, where: str, allowed: str) -> str | float | bool:
    """Normalise an operand: bool stays bool, int/float become float, str stays str."""
    if isinstance(value, bool):
        if "boolean" not in allowed:
            raise FilterError(f"{where} must be {allowed}, got {describe(value)}")
        return value
    if isinstance(value, (int, float)):
        if "number" not in allowed:
            raise FilterError(f"{where} must be {allowed}, got {describe(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise FilterError(f"{where} must be a finite number, got {describe(value)}")
        return number
    if isinstance(value, str):
        if "string" not in allowed:
            raise FilterError(f"{where} must be {allowed}, got {describe(value)}")
        return value
    raise FilterError(f"{where} must be {allowed}, got {describe(value)}")


def _condition(field: str, op: str, operand: Any, where: str) -> Condition:
    if op in ("$eq", "$ne"):
        return Condition(field, op, _scalar(operand, where, "a string, number or boolean"))
    if op in _RANGE_OPERATORS:
        return Condition(field, op, _scalar(operand, where, "a number"))
    if op in ("$in", "$nin"):
        if not isinstance(operand, (list, tuple)):
            raise FilterError(
                f"{where} must be a list of strings or numbers, got {describe(operand)}"
            )
        if len(operand) > MAX_IN_VALUES:
            raise FilterError(
                f"{where} has {len(operand)} values; the most {op} accepts is {MAX_IN_VALUES:,}"
            )
        values = tuple(
            _scalar(item, f"{where}[{i}]", "a string or number") for i, item in enumerate(operand)
        )
        return Condition(field, op, values)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise FilterError(f"{where} must be true or false, got {describe(operand)}")
        return Condition(field, op, operand)
    known = ", ".join(FIELD_OPERATORS)
    raise FilterError(f"{where}: unknown operator {describe(op)}; supported operators: {known}")


def _field(field: str, spec: Any, where: str, budget: _Budget) -> Node:
    budget.take(where)
    if isinstance(spec, Mapping):
        if not spec:
            raise FilterError(f"{where} is an empty object; give an operator such as $eq")
        conditions: list[Node] = []
        for n, (op, operand) in enumerate(spec.items()):
            if n:
                budget.take(where)
            if not isinstance(op, str) or not op.startswith("$"):
                raise FilterError(
                    f"{where} contains the key {describe(op)}: nested metadata objects are not "
                    f"supported; use an operator such as $eq, $in or $gt"
                )
            conditions.append(_condition(field, op, operand, _path(where, op)))
        return conditions[0] if len(conditions) == 1 else AllOf(tuple(conditions))
    if isinstance(spec, (list, tuple)):
        raise FilterError(
            f"{where} is a list; to match any of several values use {{\"$in\": [...]}}"
        )
    if spec is None:
        raise FilterError(f"{where} is null; to match records without the field use "
                          f"{{\"$exists\": false}}")
    return _condition(field, "$eq", spec, where)


def _parse(raw: Any, where: str, depth: int, budget: _Budget) -> Node:
    if not isinstance(raw, Mapping):
        raise FilterError(f"{where} must be an object, got {describe(raw)}")
    if not raw:
        raise FilterError(f"{where} is an empty object")
    parts: list[Node] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            raise FilterError(f"{where} has a non-string key {describe(key)}")
        here = _path(where, key)
        if key in LOGICAL_OPERATORS:
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{here} must be a non-empty list of filters")
            if depth >= MAX_FILTER_DEPTH:
                raise FilterError(
                    f"{here} nests the filter more than {MAX_FILTER_DEPTH} levels deep ($and "
                    f"and $or add a level each); flatten it"
                )
            children = tuple(
                _parse(child, f"{here}[{i}]", depth + 1, budget) for i, child in enumerate(value)
            )
            node: Node = children[0] if len(children) == 1 else (
                AllOf(children) if key == "$and" else AnyOf(children)
            )
            parts.append(node)
        elif key.startswith("$"):
            raise FilterError(
                f"{where}: {describe(key)} cannot be used at this level; only $and and $or combine "
                f"filters, and comparison operators go under a field name, e.g. "
                f"{{\"price\": {{{describe(key)}: ...}}}}".replace("'", '"')
            )
        else:
            parts.append(_field(key, value, here, budget))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def parse_filter(raw: Any) -> Node | None:
    """Validate a Pinecone filter and return its tree; ``None`` (or ``{}``) means "match all".

    Raises :class:`~refarch.errors.FilterError` naming the part of the filter that is wrong.
    """
    if raw is None:
        return None
    if isinstance(raw, Mapping) and not raw:
        return None
    return _parse(raw, "filter", 1, _Budget())


def value_equals(stored: Any, value: str | float | bool) -> bool:
    """Typed equality of a stored metadata value with a (normalised) filter operand."""
    if isinstance(value, bool):
        return isinstance(stored, bool) and stored is value
    if isinstance(value, float):
        return isinstance(stored, (int, float)) and not isinstance(stored, bool) and (
            float(stored) == value
        )
    if isinstance(stored, str):
        return stored == value
    return isinstance(stored, list) and value in stored


def value_compares(stored: Any, op: str, value: float) -> bool:
    """Whether a stored value satisfies a range operator (non-numbers never do)."""
    if isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return False
    number = float(stored)
    if op == "$gt":
        return number > value
    if op == "$gte":
        return number >= value
    if op == "$lt":
        return number < value
    return number <= value


def _condition_matches(cond: Condition, metadata: Mapping[str, Any]) -> bool:
    present = cond.field in metadata
    if cond.op == "$exists":
        return present is cond.value
    if cond.op in ("$ne", "$nin"):
        positive = Condition(cond.field, "$eq" if cond.op == "$ne" else "$in", cond.value)
        return not _condition_matches(positive, metadata)
    if not present:
        return False
    stored = metadata[cond.field]
    if cond.op == "$eq":
        return value_equals(stored, cond.value)
    if cond.op == "$in":
        return any(value_equals(stored, v) for v in cond.value)
    return value_compares(stored, cond.op, cond.value)


def matches(node: Node | None, metadata: Mapping[str, Any] | None) -> bool:
    """Whether a record with this metadata (``None``: no metadata) passes the filter tree."""
    if node is None:
        return True
    metadata = metadata or {}
    if isinstance(node, Condition):
        return _condition_matches(node, metadata)
    if isinstance(node, AllOf):
        return all(matches(child, metadata) for child in node.children)
    return any(matches(child, metadata) for child in node.children)


def fields_of(node: Node | None) -> set[str]:
    """The metadata fields a filter tree refers to."""
    if node is None:
        return set()
    if isinstance(node, Condition):
        return {node.field}
    found: set[str] = set()
    for child in node.children:
        found |= fields_of(child)
    return found
