"""The CSV catalog reader: good rows load, bad rows are reported by line, bad files fail clearly."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from refarch.catalog import (
    CatalogReadResult,
    RowError,
    iter_catalog_csv,
    read_catalog_csv,
    sample_catalog_path,
)
from refarch.errors import CatalogFormatError

HEADER = "name,sku,description,price,last_updated\n"
GOOD = "Pro Mug,SKU-aaaa-001,A steel travel mug.,$14.99,2023-09-20 22:51:32\n"


def write(tmp_path: Path, content: str | bytes, name: str = "catalog.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read(tmp_path: Path, content: str | bytes) -> CatalogReadResult:
    return read_catalog_csv(write(tmp_path, content))


def test_reference_architecture_format_loads_as_is(tmp_path: Path) -> None:
    # The exact shape of the Pinecone AWS reference architecture's products CSV.
    result = read(
        tmp_path,
        "name,sku,description,price,last_updated\n"
        "Pro System,SKU-abCD-123,This is a durable product with handy features.,$344.87,"
        "2023-09-20 22:51:32\n"
        "Lite Device,SKU-efGH-456,This is a compact product with quiet features.,$845.00,"
        "2023-09-03 22:51:32\n",
    )
    assert result.errors == []
    first, second = result.products
    assert (first.name, first.sku, first.price) == ("Pro System", "SKU-abCD-123", Decimal("344.87"))
    assert first.last_updated == datetime(2023, 9, 20, 22, 51, 32, tzinfo=UTC)
    assert first.category is None and first.attributes == {}
    assert second.price == Decimal("845.00")


def test_reference_variant_with_an_id_column_keeps_it_as_an_attribute(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        "id,name,sku,description,price,last_updated\n"
        "3d6ae001-ef80-4cbd-8e8e-000000000001,Pro System,SKU-abCD-123,A product.,$1.00,"
        "2023-09-20 22:51:32\n",
    )
    assert result.errors == []
    assert result.products[0].attributes == {"id": "3d6ae001-ef80-4cbd-8e8e-000000000001"}


def test_shipped_sample_loads_as_is() -> None:
    path = sample_catalog_path()
    assert path.read_text(encoding="utf-8").startswith("name,sku,description,price,last_updated\n")
    result = read_catalog_csv(path)
    assert result.errors == []
    assert len(result.products) == 26
    assert len({p.sku for p in result.products}) == 26
    by_sku = {p.sku: p for p in result.products}
    assert by_sku["SKU-eSpR-104"].price == Decimal("1299.00")  # "$1,299.00", quoted
    assert all(p.last_updated is not None and p.price > 0 for p in result.products)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("344.87", "344.87"),
        ("$344.87", "344.87"),
        ("$1,299.00", "1299.00"),
        ("1,299", "1299.00"),
        (" 12 ", "12.00"),
        ("0", "0.00"),
        ("$1,000,000.5", "1000000.50"),
    ],
)
def test_good_prices(tmp_path: Path, text: str, expected: str) -> None:
    result = read(tmp_path, HEADER + f'Mug,SKU-1,A mug.,"{text}",2023-09-20\n')
    assert result.errors == []
    assert result.products[0].price == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "not a number"),
        ("-5", "negative"),
        ("$-5.00", "negative"),
        ("NaN", "finite"),
        ("inf", "finite"),
        ("12,50", "thousands separator"),
        ("1,2345.00", "thousands separator"),
        ("1.234", "more than two decimal places"),
        ("", "required"),
        ("$", "not a number"),
    ],
)
def test_bad_prices_are_reported_and_do_not_stop_good_rows(
    tmp_path: Path, text: str, reason: str
) -> None:
    result = read(tmp_path, HEADER + GOOD + f'Bad,SKU-2,A mug.,"{text}",2023-09-20\n'
                  + "Good,SKU-3,Another mug.,$3.00,2023-09-20\n")
    assert [p.sku for p in result.products] == ["SKU-aaaa-001", "SKU-3"]
    [error] = result.errors
    assert error.line == 3 and error.sku == "SKU-2"
    assert reason in error.reason.lower() or reason in error.reason, error.reason
    assert "price" in error.reason.lower()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",SKU-2,A mug.,$1.00,2023-09-20", "Name must not be empty"),
        ("Mug,,A mug.,$1.00,2023-09-20", "SKU must not be empty"),
        ("Mug,SKU 2,A mug.,$1.00,2023-09-20", "spaces"),
        ("Mug,SKU-2," + "x" * 20_001 + ",$1.00,2023-09-20", "at most 20,000"),
        ("Mug\x07,SKU-2,A mug.,$1.00,2023-09-20", "must not contain control characters"),
        ("Mug,SKU-2,A mug.,$1.00,20/09/2023", "not a date and time"),
        ("Mug,SKU-2,A mug.,$1.00", "has 4 fields but the header has 5"),
        ("Mug,SKU-2,A mug, with a comma.,$1.00,2023-09-20", "has 6 fields"),
    ],
)
def test_invalid_rows_are_reported_with_line_and_reason(
    tmp_path: Path, row: str, reason: str
) -> None:
    result = read(tmp_path, HEADER + GOOD + row + "\n")
    assert [p.sku for p in result.products] == ["SKU-aaaa-001"]
    [error] = result.errors
    assert error.line == 3
    assert reason in error.reason
    assert str(error).startswith("line 3")


def test_an_empty_description_loads_as_the_editor_allows(tmp_path: Path) -> None:
    # One rule set (refarch.domain.validation): the description is optional everywhere.
    result = read(tmp_path, HEADER + "Mug,SKU-2,,$1.00,2023-09-20\n" + 'Jar,SKU-3," ",$2,\n')
    assert result.errors == []
    assert [(p.sku, p.description) for p in result.products] == [("SKU-2", ""), ("SKU-3", "")]


def test_values_are_cleaned_as_the_editor_cleans_them(tmp_path: Path) -> None:
    decomposed = "Cafe\u0301 mug"  # e + combining acute: NFC makes it one character
    result = read(tmp_path, HEADER + f"{decomposed},SKU-1,  A mug.  ,$0,\n")
    assert result.errors == []
    [product] = result.products
    assert (product.name, product.description, product.price) == ("Caf\u00e9 mug", "A mug.", Decimal("0.00"))


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "name,sku,description,last_updated\nMug,SKU-1,A mug.,2023-09-20\n")
    with pytest.raises(CatalogFormatError, match="missing required column price"):
        read_catalog_csv(path)


def test_several_missing_columns_are_all_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogFormatError, match="columns sku, price, last_updated"):
        read(tmp_path, "name,description\nMug,A mug.\n")


def test_missing_column_is_reported_when_streaming_starts(tmp_path: Path) -> None:
    path = write(tmp_path, "name,sku\nMug,SKU-1\n")
    with pytest.raises(CatalogFormatError, match="description"):
        iter_catalog_csv(path, [])  # at the call, before any iteration


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    with pytest.raises(CatalogFormatError, match="is empty"):
        read(tmp_path, content)


@pytest.mark.parametrize(
    "content", [HEADER, HEADER.rstrip("\n"), "\ufeff" + HEADER, HEADER + "\n\n"]
)
def test_header_only_gives_no_products_and_no_errors(tmp_path: Path, content: str) -> None:
    result = read(tmp_path, content)
    assert result.products == [] and result.errors == []


def test_non_utf8_bytes_name_the_byte_offset(tmp_path: Path) -> None:
    content = (HEADER + GOOD).encode() + "Café Mug,SKU-2,A mug.,$1.00,2023-09-20\n".encode("cp1252")
    offset = len((HEADER + GOOD).encode()) + 3  # "Caf" then 0xE9
    with pytest.raises(CatalogFormatError, match=f"not UTF-8: byte 0xE9 at offset {offset}"):
        read(tmp_path, content)


def test_non_utf8_far_into_the_file(tmp_path: Path) -> None:
    rows = "".join(f"Mug {i},SKU-{i},A mug.,$1.00,2023-09-20\n" for i in range(2000))
    good = ("\ufeff" + HEADER + rows).encode()
    with pytest.raises(CatalogFormatError, match=f"offset {len(good)}"):
        read(tmp_path, good + b"\xff\xfe broken\n")


def test_utf16_is_recognised(tmp_path: Path) -> None:
    with pytest.raises(CatalogFormatError, match="UTF-16"):
        read(tmp_path, codecs.BOM_UTF16_LE + (HEADER + GOOD).encode("utf-16-le"))


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00rest of a workbook", "Excel"),
        (b"\x1f\x8b\x08\x00gzip", "gzip"),
        (b"name\x00sku\x00", "NUL byte"),
        (b'[{"name": "Mug", "sku": "SKU-1"}]\n', "JSON"),
        (b"name;sku;description;price;last_updated\nMug;SKU-1;A mug.;1.00;2023-09-20\n", "';'"),
    ],
)
def test_files_that_are_not_csv(tmp_path: Path, content: bytes, what: str) -> None:
    with pytest.raises(CatalogFormatError, match=what):
        read(tmp_path, content)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogFormatError, match="no such file"):
        read_catalog_csv(tmp_path / "absent.csv")
    with pytest.raises(CatalogFormatError, match="directory"):
        read_catalog_csv(tmp_path)


def test_duplicate_header_column(tmp_path: Path) -> None:
    with pytest.raises(CatalogFormatError, match="'price' appears more than once.*4 and 6"):
        read(tmp_path, "name,sku,description,price,last_updated,Price\n")


def test_quoted_commas_and_quotes(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        HEADER + '"Mug, large",SKU-1,"Holds coffee, tea, or ""anything"" hot.","$1,299.00",'
        "2023-09-20\n",
    )
    assert result.errors == []
    [product] = result.products
    assert product.name == "Mug, large"
    assert product.description == 'Holds coffee, tea, or "anything" hot.'
    assert product.price == Decimal("1299.00")


def test_multi_line_fields_keep_physical_line_numbers(tmp_path: Path) -> None:
    content = (
        HEADER  # line 1
        + 'Mug,SKU-1,"First line\nsecond line\nthird line",$1.00,2023-09-20\n'  # lines 2-4
        + "Bad,SKU-2,A mug.,oops,2023-09-20\n"  # line 5
        + "\n"  # line 6, blank
        + 'Jar,SKU-3,"One\r\nTwo",$2.00,2023-09-20\r\n'  # lines 7-8
        + "Bad,SKU-4,A jar.,-1,2023-09-20\n"  # line 9
    )
    result = read(tmp_path, content)
    assert [p.sku for p in result.products] == ["SKU-1", "SKU-3"]
    assert result.products[0].description == "First line\nsecond line\nthird line"
    assert [(e.line, e.sku) for e in result.errors] == [(5, "SKU-2"), (9, "SKU-4")]


def test_duplicate_sku_keeps_the_first_and_reports_the_second(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        HEADER + GOOD
        + "Other,SKU-2,Something else.,$2.00,2023-09-20\n"
        + "Copy,SKU-aaaa-001,A copy.,$3.00,2023-09-21\n",
    )
    assert [p.name for p in result.products] == ["Pro Mug", "Other"]
    assert result.errors == [
        RowError(4, "duplicate SKU 'SKU-aaaa-001': already on line 2", "SKU-aaaa-001")
    ]


def test_an_invalid_first_occurrence_does_not_block_a_valid_second(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        HEADER + "Mug,SKU-1,A mug.,bad,2023-09-20\n" + "Mug,SKU-1,A mug.,$1.00,2023-09-20\n",
    )
    assert [p.price for p in result.products] == [Decimal("1.00")]
    assert [e.line for e in result.errors] == [2]


def test_bom_is_ignored(tmp_path: Path) -> None:
    result = read(tmp_path, codecs.BOM_UTF8 + (HEADER + GOOD).encode())
    assert result.errors == [] and [p.sku for p in result.products] == ["SKU-aaaa-001"]


def test_unterminated_quote_is_reported_and_earlier_rows_kept(tmp_path: Path) -> None:
    result = read(
        tmp_path, HEADER + GOOD + 'Mug,SKU-2,"never closed,$1.00,2023-09-20\nMore,SKU-3,x,$1,x\n'
    )
    assert [p.sku for p in result.products] == ["SKU-aaaa-001"]
    [error] = result.errors
    assert error.line == 3 and "never closed" in error.reason and "lines 3-4" in error.reason


def test_malformed_quoting_is_a_row_error(tmp_path: Path) -> None:
    result = read(tmp_path, HEADER + 'Mug,SKU-2,"quoted"trailing,$1.00,2023-09-20\n' + GOOD)
    assert [p.sku for p in result.products] == ["SKU-aaaa-001"]
    assert [e.line for e in result.errors] == [2]
    assert "not valid CSV" in result.errors[0].reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-09-20 22:51:32", datetime(2023, 9, 20, 22, 51, 32, tzinfo=UTC)),
        ("2023-09-20T22:51:32Z", datetime(2023, 9, 20, 22, 51, 32, tzinfo=UTC)),
        ("2023-09-20T22:51:32.250+02:00",
         datetime(2023, 9, 20, 22, 51, 32, 250000, tzinfo=timezone(timedelta(hours=2)))),
        ("2023-09-20", datetime(2023, 9, 20, tzinfo=UTC)),
        ("", None),
    ],
)
def test_timestamps(tmp_path: Path, text: str, expected: datetime | None) -> None:
    result = read(tmp_path, HEADER + f"Mug,SKU-1,A mug.,1,{text}\n")
    assert result.errors == []
    assert result.products[0].last_updated == expected


def test_optional_category_extra_columns_and_header_case(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        " Name , SKU ,Description,PRICE,Last_Updated,Category,color,\n"
        "Mug,SKU-1,A mug.,1,2023-09-20,Drinkware,blue,\n"
        "Jar,SKU-2,A jar.,2,2023-09-20,,,note\n",
    )
    assert result.errors == []
    mug, jar = result.products
    assert (mug.category, dict(mug.attributes)) == ("Drinkware", {"color": "blue"})
    assert (jar.category, dict(jar.attributes)) == (None, {"column_8": "note"})


def test_whitespace_around_fields(tmp_path: Path) -> None:
    result = read(tmp_path, HEADER + '  Mug , SKU-1 , "A mug, big.", $1.00 , 2023-09-20 \n')
    assert result.errors == []
    product = result.products[0]
    assert (product.name, product.sku, product.description) == ("Mug", "SKU-1", "A mug, big.")


def test_streaming_appends_errors_as_it_goes(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + GOOD + "Bad,SKU-2,x,bad,2023-09-20\n"
                 + "Mug,SKU-3,A mug.,1,2023-09-20\n")
    errors: list[RowError] = []
    products = iter_catalog_csv(path, errors)
    assert next(products).sku == "SKU-aaaa-001" and errors == []
    assert next(products).sku == "SKU-3" and [e.line for e in errors] == [3]
    assert list(products) == []
