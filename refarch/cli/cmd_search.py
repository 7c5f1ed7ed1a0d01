"""``refarch search "QUERY"``: semantic search answered from Postgres (see :mod:`refarch.search`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from refarch.cli.args import Subparsers, filter_json
from refarch.settings import Settings


def _top_k(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 10000, got {value}")
    return value


def _price(text: str) -> float:
    try:
        value = float(text.replace("$", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a price") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def search_filter(args: argparse.Namespace) -> dict[str, Any] | None:
    """The filter from ``--filter`` JSON and the ``--category`` / price flags (ANDed)."""
    from refarch.search import build_filter

    parts: list[dict[str, Any]] = []
    if args.filter:
        raw = filter_json(args.filter)
        if raw:
            parts.append(raw)
    built = build_filter(args.category or (), args.min_price, args.max_price)
    if built:
        parts.append(built)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import make_embedder, make_index, role_url
    from refarch.cli.cmd_stack import format_hits
    from refarch.db.connect import connect
    from refarch.search import search, validate_filter

    flt = search_filter(args)
    validate_filter(flt)  # a bad filter is reported before anything is started or loaded
    url = role_url(settings, "app")
    index = make_index(settings)
    try:
        with connect(url, autocommit=True) as conn:
            result = search(args.query, embedder=make_embedder(settings), index=index, conn=conn,
                            top_k=args.top_k, filter=flt)
    finally:
        index.close()
    if args.json:
        print(json.dumps([hit.as_dict() for hit in result.hits], indent=2))
    else:
        print(format_hits(result.hits))
        stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
        print(f"({len(result.hits)} results; {stages})")
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``search``."""
    p = subparsers.add_parser(
        "search", help="semantic search over the products (results read from Postgres)",
        description="Embed the query, find the nearest products in the vector index (with "
                    "optional filters on category and price), and show them as Postgres has "
                    "them now, best first, with scores.",
    )
    p.add_argument("query", help="what you are looking for, in your own words")
    p.add_argument("--top-k", type=_top_k, default=10, help="how many results (default 10)")
    p.add_argument("--filter", metavar="JSON",
                   help='a Pinecone-style filter on category and price, e.g. '
                        '\'{"price": {"$lte": 30}}\'')
    p.add_argument("--category", action="append", metavar="NAME",
                   help="only this category (repeat for several)")
    p.add_argument("--min-price", type=_price, metavar="X", help="lowest price")
    p.add_argument("--max-price", type=_price, metavar="Y", help="highest price")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list (id, sku, name, category, price, score, ...), best first")
    p.set_defaults(func=_search)
