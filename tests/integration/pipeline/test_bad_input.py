"""Bad input (issue 4, item 9; invariant 7): a clear error naming what is wrong, nothing stored
is lost, and the rest of the batch is still indexed."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import psycopg
import pytest

from refarch.embeddings import TextTruncatedWarning
from tests.support.paths import ROOT
from tests.support.pipeline import totals

from .harness import Pipeline


def test_empty_and_oversized_descriptions_are_indexed_with_the_rest(pipeline: Pipeline) -> None:
    ok = [pipeline.insert(f"OK-{i}", description=f"an ordinary product {i}") for i in range(3)]
    empty = pipeline.insert("EMPTY-DESC", name="Plain steel spoon", description="")
    huge = pipeline.insert("HUGE-DESC", name="Encyclopedia", description="volume " * 200_000)  # 1.4 MB
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = pipeline.sync()
    assert totals(results)["embedded"] == 5 and totals(results)["failed"] == 0
    assert set(pipeline.index_state()) == {*ok, empty, huge}
    assert pipeline.index_state() == pipeline.postgres_state()
    assert any(issubclass(w.category, TextTruncatedWarning) for w in caught)  # said, not silent


def test_invalid_utf8_is_refused_by_postgres_and_loses_nothing(pipeline: Pipeline) -> None:
    keep = pipeline.insert("KEEP", description="stays")
    pipeline.sync()
    with psycopg.connect(pipeline.owner_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CharacterNotInRepertoire, match="invalid byte sequence"):
            conn.execute(
                "INSERT INTO products (sku, name, description, price) "
                "VALUES ('BAD', convert_from('\\xfffe'::bytea, 'UTF8'), 'x', 1)"
            )
        with pytest.raises(UnicodeEncodeError):
            conn.execute("UPDATE products SET description = %s WHERE id = %s", ("bad \udcff", keep))
    assert pipeline.sql("SELECT sku, description FROM products") == [("KEEP", "stays")]
    assert pipeline.sql("SELECT count(*) FROM outbox") == [(0,)]  # no change was captured
    pipeline.insert("AFTER", description="the next write works")
    pipeline.sync()
    assert pipeline.index_state() == pipeline.postgres_state()


def test_sql_looking_strings_are_stored_and_indexed_verbatim(pipeline: Pipeline) -> None:
    texts = ["'; DROP TABLE products; --", "1 OR 1=1", "$1; DELETE FROM outbox", "%s %(x)s {}"]
    ids = [pipeline.insert(f"SQL-{i}", name=text, description=text) for i, text in enumerate(texts)]
    pipeline.sync()
    stored = dict(pipeline.sql("SELECT id, name FROM products"))
    assert [stored[i] for i in ids] == texts
    metadata = {vid: meta["name"] for vid, (_, meta) in pipeline.index.fetch([str(i) for i in ids]).items()}
    assert [metadata[str(i)] for i in ids] == texts
    assert pipeline.index_state() == pipeline.postgres_state()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", '{"colour": "red"}'], "unknown filter field 'colour'"),
        (["--filter", "not json"], "--filter is not valid JSON"),
        (["--filter", '{"price": {"$between": [1, 2]}}'], "$between"),
    ],
)
def test_the_cli_names_a_bad_filter_without_a_traceback(args: list[str], message: str,
                                                         tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "refarch.cli", "search", "mug", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "REFARCH_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
