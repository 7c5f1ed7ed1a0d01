"""``refarch index-server``, ``refarch index-catalog`` and ``refarch index-query``.

* ``index-server`` runs the local Pinecone-compatible index server in the foreground (data
  under ``REFARCH_HOME/index``; stop it with Ctrl-C).
* ``index-catalog`` embeds a catalog (generated, or a CSV file) and upserts it straight into
  the index's ``catalog`` namespace, with progress: the notebook-stage path, without Postgres.
* ``index-query`` embeds a query and asks the index directly, printing what the index holds
  (metadata) with scores; ``refarch search`` is the production search through Postgres.

With the local backend, the last two use the server already running on ``REFARCH_INDEX_PORT``
or start one for the duration of the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from refarch.cli.args import filter_json
from refarch.cli.args import positive_int as _positive
from refarch.errors import InputError
from refarch.settings import Settings


def _top_k(text: str) -> int:
    value = _positive(text)
    if value > 10_000:
        raise argparse.ArgumentTypeError(f"must be at most 10000, got {value}")
    return value


def _server(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.index.process import default_data_dir
    from refarch.index.server.hosts import check_bind
    from refarch.index.server.main import serve

    data_dir = (args.data_dir or default_data_dir(settings)).resolve()
    check_bind(args.host or settings.index_host, settings.index_api_key)  # before "listening"
    print(f"refarch index server: data in {data_dir}, listening on "
          f"http://{args.host or settings.index_host}:{args.port or settings.index_port} "
          f"(Ctrl-C stops it)", file=sys.stderr)
    serve(data_dir, args.host or settings.index_host, args.port or settings.index_port,
          settings.index_api_key, allowed_hosts=settings.index_allowed_hosts)
    return 0


def _products(args: argparse.Namespace) -> list[Any]:
    from refarch.catalog import generate_products, read_catalog_csv, sample_catalog_path

    if args.generate is not None:
        return list(generate_products(args.generate))
    path = args.csv or sample_catalog_path()
    result = read_catalog_csv(path)
    for error in result.errors[:10]:
        print(f"skipped {error}", file=sys.stderr)
    if len(result.errors) > 10:
        print(f"... and {len(result.errors) - 10} more rejected records", file=sys.stderr)
    if not result.products:
        raise InputError(f"{path} holds no valid product")
    return result.products


def _catalog(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import index_session, make_embedder
    from refarch.index.catalog import index_catalog

    products = _products(args)
    embedder = make_embedder(settings)
    with index_session(settings, namespace=args.namespace) as index:
        written = index_catalog(index, products, embedder, batch_size=args.batch_size)
        total = index.count()
    print(f"indexed {written:,} products into index {settings.index_name!r}, namespace "
          f"{args.namespace!r}, which now holds {total:,} vectors")
    return 0


def _query(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import index_session, make_embedder
    from refarch.index.catalog import render_matches

    flt = None
    if args.filter:
        flt = filter_json(args.filter)
    vector = [float(x) for x in make_embedder(settings).encode_query(args.query)]
    with index_session(settings, namespace=args.namespace) as index:
        matches = index.query(vector, top_k=args.top_k, filter=flt)
    print(render_matches(matches, as_json=args.json))
    return 0


def register(subparsers: Any) -> None:
    """Add ``index-server``, ``index-catalog`` and ``index-query``."""
    p = subparsers.add_parser(
        "index-server", help="run the local Pinecone-compatible vector index server",
        description="Serve Pinecone's REST API (the pinecone SDK works unchanged) from data "
                    "under REFARCH_HOME/index, until Ctrl-C or SIGTERM.",
    )
    p.add_argument("--host", help="address to bind (default REFARCH_INDEX_HOST, 127.0.0.1)")
    p.add_argument("--port", type=_positive, help="port (default REFARCH_INDEX_PORT, 5081)")
    p.add_argument("--data-dir", type=Path, help="data directory (default REFARCH_HOME/index)")
    p.set_defaults(func=_server)

    from refarch.index.catalog import CATALOG_NAMESPACE

    p = subparsers.add_parser(
        "index-catalog", help="embed a catalog and upsert it straight into the vector index",
        description="Embed products (name, category, description) and upsert them with sku, "
                    "name, category and price as metadata; the SKU is the vector id. Without "
                    "--generate or --csv, the sample catalog shipped with refarch is used.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--generate", type=_positive, metavar="N",
                        help="index N generated products")
    source.add_argument("--csv", type=Path, metavar="PATH", help="index the products of a CSV")
    p.add_argument("--namespace", default=CATALOG_NAMESPACE,
                   help=f"namespace to write to (default {CATALOG_NAMESPACE!r})")
    p.add_argument("--batch-size", type=_positive, default=512,
                   help="products embedded and upserted per step (default 512)")
    p.set_defaults(func=_catalog)

    p = subparsers.add_parser(
        "index-query", help="ask the vector index directly (what it holds, with scores)",
        description="Embed the query and print the index's nearest records with their "
                    "metadata and scores, best first (no Postgres; see `refarch search`).",
    )
    p.add_argument("query", help="what you are looking for, in your own words")
    p.add_argument("--filter", metavar="JSON",
                   help='a Pinecone metadata filter, e.g. \'{"price": {"$lte": 30}}\'')
    p.add_argument("--top-k", type=_top_k, default=10, help="how many results (default 10)")
    p.add_argument("--namespace", default=CATALOG_NAMESPACE,
                   help=f"namespace to search (default {CATALOG_NAMESPACE!r})")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of {id, sku, name, category, price, score}, best first")
    p.set_defaults(func=_query)
