"""A brute-force reference for vector search: Pinecone's filter semantics and scores.

Written independently of ``refarch.index.filters`` from the semantics documented in
docs/vector-index.md, so a mistake shared by the two would have to be made twice. The query
semantics tests and the port tests compare every backend (and the in-memory fake) with it.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

COLORS = ["red", "green", "blue", "black", "10"]
TAGS = ["sale", "new", "eco", "gift", "bulk"]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _eq(stored: Any, value: Any) -> bool:
    if isinstance(stored, list):
        return isinstance(value, str) and value in stored
    if isinstance(value, bool) or isinstance(stored, bool):
        return isinstance(value, bool) and isinstance(stored, bool) and value == stored
    if _is_number(value) and _is_number(stored):
        return float(value) == float(stored)
    return isinstance(value, str) and isinstance(stored, str) and value == stored


def reference_matches(flt: dict, md: dict) -> bool:
    """Does metadata ``md`` pass Pinecone filter ``flt``?"""
    for key, spec in flt.items():
        if key == "$and":
            if not all(reference_matches(f, md) for f in spec):
                return False
            continue
        if key == "$or":
            if not any(reference_matches(f, md) for f in spec):
                return False
            continue
        ops = spec if isinstance(spec, dict) else {"$eq": spec}
        present = key in md
        stored = md.get(key)
        for op, value in ops.items():
            if op == "$exists":
                ok = present == value
            elif op == "$eq":
                ok = present and _eq(stored, value)
            elif op == "$ne":
                ok = not (present and _eq(stored, value))
            elif op == "$in":
                ok = present and any(_eq(stored, v) for v in value)
            elif op == "$nin":
                ok = not (present and any(_eq(stored, v) for v in value))
            else:
                ok = present and _is_number(stored) and {
                    "$gt": stored > value, "$gte": stored >= value,
                    "$lt": stored < value, "$lte": stored <= value,
                }[op]
            if not ok:
                return False
    return True


def random_metadata(rng: random.Random) -> dict[str, Any]:
    md: dict[str, Any] = {}
    if rng.random() < 0.8:
        md["color"] = rng.choice(COLORS)
    if rng.random() < 0.8:
        md["size"] = rng.choice([rng.randrange(0, 20), rng.randrange(0, 20) + 0.5])
    if rng.random() < 0.7:
        md["flag"] = rng.random() < 0.5
    if rng.random() < 0.7:
        md["tags"] = rng.sample(TAGS, rng.randrange(0, 4))
    if rng.random() < 0.6:  # one field, several types: comparisons must stay typed
        md["mixed"] = rng.choice(["10", 10, True, ["10"], "x", 3.5])
    return md


def random_condition(rng: random.Random) -> dict[str, Any]:
    field = rng.choice(["color", "size", "flag", "tags", "mixed", "absent"])
    op = rng.choice(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "="])
    scalars = COLORS + TAGS + [0, 5, 10, 10.0, 3.5, 19.5, True, False, "x"]
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return {field: {op: rng.choice([0, 3.5, 5, 10, 12.5, 19])}}
    if op in ("$in", "$nin"):
        pool = [s for s in scalars if not isinstance(s, bool)]
        return {field: {op: rng.sample(pool, rng.randrange(1, 5))}}
    if op == "$exists":
        return {field: {op: rng.random() < 0.5}}
    value = rng.choice(scalars)
    return {field: value} if op == "=" else {field: {op: value}}


def random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    roll = rng.random()
    if depth < 2 and roll < 0.25:
        return {rng.choice(["$and", "$or"]): [random_filter(rng, depth + 1)
                                             for _ in range(rng.randrange(1, 4))]}
    if roll < 0.4:  # implicit AND across fields
        merged: dict[str, Any] = {}
        for _ in range(2):
            merged.update(random_condition(rng))
        return merged
    if roll < 0.5:  # range on one field
        low = rng.choice([0, 2, 5])
        return {"size": {"$gte": low, "$lt": low + rng.choice([3, 8])}}
    return random_condition(rng)


def true_scores(metric: str, vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "cosine":
        return (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
    if metric == "dotproduct":
        return v @ q
    return ((v - q) ** 2).sum(axis=1)  # Pinecone reports the squared euclidean distance
