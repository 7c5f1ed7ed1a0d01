"""Read a product catalog from a CSV file, keeping every good row and reporting every bad one.

Format: UTF-8 (a byte-order mark is fine), comma-separated, a header line, then one product per
record. Column names are matched without regard to case or surrounding spaces.

=================  ========  ===============================================================
column             required  value
=================  ========  ===============================================================
``name``           yes       non-empty text
``sku``            yes       non-empty, no spaces, unique within the file
``description``    yes       text, may be empty (quoted fields may span lines)
``price``          yes       ``344.87``, ``$344.87``, ``$1,299.00``; not negative, <= 2 places
``last_updated``   yes       ISO 8601 (``2023-09-20T22:51:32Z``, ``2023-09-20``) or the
                             reference architecture's ``2023-09-20 22:51:32``; naive times
                             are UTC; an empty value means unknown
``category``       no        text; empty means none
anything else      no        kept as text in ``Product.attributes`` (empty values dropped)
=================  ========  ===============================================================

Every value is checked and cleaned by the one rule set of :mod:`refarch.domain.validation`
(the editor's: lengths, control characters, price range and scale), so every product read here
can be loaded and then edited.

This is the format of the Pinecone AWS reference architecture's sample data
(``name,sku,description,price,last_updated`` with ``$`` prices), which loads as is.

Two kinds of problem, two kinds of report:

* A record that fails validation (bad price, empty name, a second occurrence of a SKU, a wrong
  number of fields...) becomes a :class:`RowError` with the physical line it starts on, so it
  can be found in an editor even after multi-line quoted fields, and reading goes on.
* A file that cannot be read as a catalog at all (missing, empty, not UTF-8, not CSV, a required
  column missing) raises one :class:`~refarch.errors.CatalogFormatError` saying what is wrong.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from refarch.domain.product import Product
from refarch.domain.validation import clean_product
from refarch.errors import CatalogFormatError, FieldValidationError

#: Columns every catalog file must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("name", "sku", "description", "price", "last_updated")
#: Columns with a meaning of their own that a file may have.
OPTIONAL_COLUMNS: tuple[str, ...] = ("category",)

# A price with a comma must use it as a thousands separator: "$1,299.00", not "12,50".
_GROUPED_PRICE = re.compile(r"\$?\s*\d{1,3}(,\d{3})+(\.\d*)?")
_SNIFF_BYTES = 8192
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?); export it as CSV"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document; export it as CSV"),
    (b"SQLite format 3", "an SQLite database"),
)
_OTHER_ENCODINGS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


@dataclass(frozen=True)
class RowError:
    """A record that was not loaded: the line it starts on (1 = header), why, and its SKU."""

    line: int
    reason: str
    sku: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (sku {self.sku})" if self.sku else "")
        return f"{where}: {self.reason}"


@dataclass
class CatalogReadResult:
    """The products read from a catalog file and the records that were rejected."""

    products: list[Product] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def sample_catalog_path() -> Path:
    """Path of the small sample catalog shipped with refarch, in the reference format."""
    return Path(__file__).resolve().parent / "data" / "sample_products.csv"


def read_catalog_csv(path: str | Path) -> CatalogReadResult:
    """Read every product of the CSV catalog at ``path`` (format: see the module docstring).

    Bad records are returned in ``errors`` and do not stop the good ones. Raises
    :class:`~refarch.errors.CatalogFormatError` when the file cannot be read as a catalog.
    For big files, :func:`iter_catalog_csv` streams instead of building a list.
    """
    errors: list[RowError] = []
    products = list(iter_catalog_csv(path, errors))
    return CatalogReadResult(products, errors)


def iter_catalog_csv(path: str | Path, errors: list[RowError]) -> Iterator[Product]:
    """Stream the products of the CSV catalog at ``path``, appending rejected records to ``errors``.

    The file's header is checked now, so a missing file or column raises
    :class:`~refarch.errors.CatalogFormatError` at the call; a problem found further into the
    file (bytes that are not UTF-8) raises it during iteration. Memory does not grow with the
    file except for the set of SKUs seen, which duplicate detection needs.
    """
    path = Path(path)
    with _open(path) as stream:
        _read_header(path, _records(path, stream))
    return _iter_products(path, errors)


def _open(path: Path) -> BinaryIO:
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise CatalogFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CatalogFormatError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise CatalogFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        _sniff(path, stream.read(_SNIFF_BYTES))
    except BaseException:
        stream.close()
        raise
    stream.seek(0)
    return stream


def _sniff(path: Path, head: bytes) -> None:
    """Reject files that are plainly not UTF-8 text before parsing them."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise CatalogFormatError(f"{path}: is {what}, not a CSV file")
    for bom, encoding in _OTHER_ENCODINGS:
        if head.startswith(bom):
            raise CatalogFormatError(f"{path}: is {encoding}-encoded, not UTF-8; save it as UTF-8")
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise CatalogFormatError(
            f"{path}: contains a NUL byte at offset {offset}; it is a binary file, not CSV"
        )
    text = head.removeprefix(codecs.BOM_UTF8).strip()
    if not text:
        raise CatalogFormatError(f"{path}: is empty; a catalog needs at least a header line")
    if text[:1] in (b"{", b"["):
        raise CatalogFormatError(f"{path}: looks like JSON, not CSV")


def _lines(path: Path, stream: BinaryIO) -> Iterator[str]:
    """Decode physical lines as UTF-8, naming the byte offset of the first undecodable byte."""
    offset = 0
    first = True
    for raw in stream:
        if first and raw.startswith(codecs.BOM_UTF8):
            raw, offset = raw[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        first = False
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex().upper()
            raise CatalogFormatError(
                f"{path}: is not UTF-8: byte 0x{bad} at offset {offset + exc.start} cannot be "
                "decoded; save the file as UTF-8"
            ) from None
        offset += len(raw)


@dataclass
class _Record:
    line: int
    fields: list[str] | None
    error: str | None = None


def _records(path: Path, stream: BinaryIO) -> Iterator[_Record]:
    """CSV records with the physical line each starts on; unparseable records carry an error."""
    reader = csv.reader(_lines(path, stream), strict=True, skipinitialspace=True)
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if "unexpected end of data" in message:
                message = (
                    f"a quoted field opened here is never closed; lines {line}-{reader.line_num} "
                    "(the rest of the file) could not be read"
                )
            yield _Record(line, None, f"not valid CSV: {message}")
            continue
        yield _Record(line, fields)


@dataclass(frozen=True)
class _Header:
    #: Column position of each required and optional column.
    positions: dict[str, int]
    #: Position and attribute key of every other column.
    extras: tuple[tuple[int, str], ...]
    width: int


def _read_header(path: Path, records: Iterator[_Record]) -> _Header:
    for record in records:
        if record.error is not None:
            raise CatalogFormatError(f"{path}: the header line cannot be parsed ({record.error})")
        assert record.fields is not None
        if any(value.strip() for value in record.fields):
            return _parse_header(path, record.fields)
    raise CatalogFormatError(f"{path}: is empty; a catalog needs at least a header line")


def _parse_header(path: Path, names: list[str]) -> _Header:
    positions: dict[str, int] = {}
    extras: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(names):
        name = raw.strip()
        key = name.lower()
        if not name:
            # Spreadsheets often leave a trailing empty column; keep any values it has.
            extras.append((index, f"column_{index + 1}"))
            continue
        if key in seen:
            raise CatalogFormatError(
                f"{path}: column {key!r} appears more than once in the header "
                f"(columns {seen[key] + 1} and {index + 1})"
            )
        seen[key] = index
        if key in REQUIRED_COLUMNS or key in OPTIONAL_COLUMNS:
            positions[key] = index
        else:
            extras.append((index, name))
    missing = [column for column in REQUIRED_COLUMNS if column not in positions]
    if missing:
        raise CatalogFormatError(_missing_columns_message(path, names, missing))
    return _Header(positions, tuple(extras), len(names))


def _missing_columns_message(path: Path, names: list[str], missing: list[str]) -> str:
    found = ", ".join(repr(n.strip()) for n in names[:8]) + (" ..." if len(names) > 8 else "")
    message = (
        f"{path}: missing required column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(missing)} (the header has: {found}); "
        f"a catalog needs {', '.join(REQUIRED_COLUMNS)}"
    )
    first = ",".join(names)
    if len(names) == 1 and (";" in first or "\t" in first):
        message += "; the file seems to use ';' or tabs between fields, not commas"
    return message


def _iter_products(path: Path, errors: list[RowError]) -> Iterator[Product]:
    with _open(path) as stream:
        records = _records(path, stream)
        header = _read_header(path, records)
        first_line_of: dict[str, int] = {}
        for record in records:
            if record.error is not None:
                errors.append(RowError(record.line, record.error))
                continue
            assert record.fields is not None
            if not any(value.strip() for value in record.fields):
                continue  # blank line
            try:
                product = _product(header, record.fields)
            except _RowRejected as exc:
                errors.append(RowError(record.line, exc.reason, exc.sku))
                continue
            first = first_line_of.setdefault(product.sku, record.line)
            if first != record.line:
                errors.append(
                    RowError(
                        record.line,
                        f"duplicate SKU {product.sku!r}: already on line {first}",
                        product.sku,
                    )
                )
                continue
            yield product


class _RowRejected(Exception):
    def __init__(self, reason: str, sku: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sku = sku


def _product(header: _Header, fields: list[str]) -> Product:
    """Validate one record; raises :class:`_RowRejected` naming the first problem."""
    sku_at = header.positions["sku"]
    raw_sku = fields[sku_at].strip() if len(fields) > sku_at else ""
    sku_hint = raw_sku or None
    if len(fields) != header.width:
        raise _RowRejected(
            f"has {len(fields)} fields but the header has {header.width} "
            "(an unquoted comma or a missing field?)",
            sku_hint,
        )

    def value(column: str) -> str:
        return fields[header.positions[column]]

    try:
        product = clean_product(
            sku=raw_sku,
            name=value("name"),
            description=value("description"),
            category=value("category") if "category" in header.positions else None,
            price=_check_grouping(value("price")),
        )
    except FieldValidationError as exc:
        raise _RowRejected(str(exc), sku_hint) from None
    last_updated = _parse_timestamp(value("last_updated"), sku_hint)
    attributes = {key: fields[i].strip() for i, key in header.extras if fields[i].strip()}
    return replace(product, last_updated=last_updated, attributes=attributes)


def _check_grouping(text: str) -> str:
    stripped = text.strip()
    if "," in stripped and not _GROUPED_PRICE.fullmatch(stripped):
        raise FieldValidationError(
            "price",
            f"Price {stripped!r} has a comma that is not a thousands separator "
            "(write 12.50, not 12,50)",
        )
    return stripped


def _parse_timestamp(text: str, sku: str | None) -> datetime | None:
    """ISO 8601 (date, or date and time with ``T`` or a space, optional offset); naive is UTC."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise _RowRejected(
            f"last_updated {stripped!r} is not a date and time; use ISO 8601 such as "
            "2023-09-20 22:51:32 or 2023-09-20T22:51:32Z",
            sku,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
