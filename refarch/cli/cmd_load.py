"""``refarch load --csv PATH | --generate N``: bulk-load products into Postgres."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from refarch.bootstrap import database_url
from refarch.catalog import generate_products, read_catalog_csv
from refarch.cli.args import Subparsers
from refarch.cli.args import positive_int as _positive
from refarch.db.connect import connect, redact_url
from refarch.db.load import load_products
from refarch.db.migrations import migrate
from refarch.domain.product import Product
from refarch.errors import InputError
from refarch.settings import Settings

#: Exit code when the load finished but some rows were rejected.
SOME_REJECTED = 1


def _load(args: argparse.Namespace, settings: Settings) -> int:
    rejected_lines: list[str] = []
    products: Iterable[Product]
    if args.csv is not None:
        read = read_catalog_csv(args.csv)  # an unreadable file fails here, before any write
        products = read.products
        total: int | None = len(read.products)
        rejected_lines = [f"line {e.line}: {e.reason}" for e in read.errors]
        source = f"{args.csv} ({len(read.products)} valid rows, {len(read.errors)} rejected)"
    else:
        try:
            products = generate_products(args.generate, seed=args.seed)
        except ValueError as exc:
            raise InputError(f"--generate {args.generate}: {exc}") from None
        total = args.generate
        source = f"{args.generate} generated products (seed {args.seed})"

    url = database_url(settings)
    migrate(url)
    with connect(url) as conn:
        result = load_products(
            conn, products, batch_size=args.batch_size or settings.load_batch_size,
            total=total, progress=not args.no_progress,
        )
    rejected_lines += [
        f"product #{r.position} (sku {r.sku!r}): {r.reason}" for r in result.rejected
    ]
    for line in rejected_lines:
        print(f"rejected {line}", file=sys.stderr)
    print(f"loaded {source} into {redact_url(url)}")
    print(result.summary())
    if rejected_lines:
        print(f"{len(rejected_lines)} rows were rejected (listed above); the others are loaded",
              file=sys.stderr)
        return SOME_REJECTED
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``refarch load``."""
    parser = subparsers.add_parser(
        "load",
        help="bulk-load products from a CSV catalog or the generator (COPY, upsert by SKU)",
        description=(
            "Load products into the products table with COPY. A SKU already in the table is "
            "updated when anything changed and left alone otherwise, so loading the same file "
            "again changes nothing. Rows that fail validation are listed with their line "
            "number and reason; the good rows still load. Starts the local server and applies "
            "the schema migrations first when needed."
        ),
        epilog=f"Exit code: 0 all rows loaded, {SOME_REJECTED} some rows rejected, 2 error.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", metavar="PATH",
                        help="a CSV catalog (name, sku, description, price, last_updated, ...)")
    source.add_argument("--generate", metavar="N", type=_positive,
                        help="generate N realistic products instead")
    parser.add_argument("--seed", type=int, default=42,
                        help="generator seed (default 42; the same seed gives the same products)")
    parser.add_argument("--batch-size", type=_positive, default=None, metavar="N",
                        help="rows per COPY batch (default REFARCH_LOAD_BATCH_SIZE, 50000)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_load)
