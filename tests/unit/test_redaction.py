"""No password or API key in what refarch prints or logs (refarch/redact.py and its users)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from refarch.cli import main
from refarch.errors import DatabaseError
from refarch.local.status import collect_status, format_status
from refarch.logs import configure
from refarch.redact import redact_url
from refarch.settings import Settings

SECRET = "hunter2"
#: A server nothing listens on: every connection is refused at once.
OWNER = f"postgresql://admin:{SECRET}@127.0.0.1:1/refarch"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"cannot connect to {OWNER}: refused",
         "cannot connect to postgresql://admin:***@127.0.0.1:1/refarch: refused"),
        # an unencoded "@" in the password: all of it is hidden, not what precedes the "@"
        ("postgresql://app:p@ss@db/shop", "postgresql://app:***@db/shop"),
        ("postgresql://:pw@db/shop", "postgresql://:***@db/shop"),
        ("host=db password='two words' user=app", "host=db password=*** user=app"),
        ("PGPASSWORD=s3cret psql", "PGPASSWORD=*** psql"),
        ("https://example.com/a@b and http://127.0.0.1:5081",
         "https://example.com/a@b and http://127.0.0.1:5081"),
    ],
)
def test_redact_url_hides_every_password_in_a_text(text: str, shown: str) -> None:
    assert redact_url(text) == shown


def test_settings_repr_shows_no_secret() -> None:
    settings = Settings.from_env({
        "DATABASE_URL": OWNER, "PINECONE_API_KEY": "pk-live-123", "REFARCH_INDEX_API_KEY": "ik-456",
        "REFARCH_APP_DATABASE_URL": "postgresql://refarch_app:apppw@db/refarch",
    }).with_(extras={"token": "tok-789"})
    shown = repr(settings)
    for secret in (SECRET, "pk-live-123", "ik-456", "apppw", "tok-789"):
        assert secret not in shown and secret not in str(settings) and secret not in f"{settings}"
    assert "database_url='postgresql://admin:***@127.0.0.1:1/refarch'" in shown
    assert "pinecone_api_key='***'" in shown and "extras={'token': '***'}" in shown
    # unset secrets stay visibly unset; everything else is shown as it is
    assert "pinecone_api_key=None" in repr(Settings.from_env({}))
    assert "index_port=5081" in shown
    assert settings.pinecone_api_key == "pk-live-123"  # the value itself is untouched


def test_log_lines_and_tracebacks_show_no_password() -> None:
    stream = io.StringIO()
    configure("INFO", stream=stream)
    log = logging.getLogger("refarch.test.redaction")
    log.info("event=connecting url=%s", OWNER)
    try:
        raise DatabaseError(f"lost {OWNER}")
    except DatabaseError:
        log.exception("event=failed")
    text = stream.getvalue()
    assert SECRET not in text
    assert text.count("postgresql://admin:***@127.0.0.1:1/refarch") == 2, text  # the line and the traceback


def test_status_and_db_status_show_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"REFARCH_HOME": str(tmp_path), "DATABASE_URL": OWNER, "REFARCH_INDEX_PORT": "1"}
    # What `refarch status` and its --json print (collecting it once: the index retries).
    report = collect_status(Settings.from_env(env))
    assert report.database_url == "postgresql://admin:***@127.0.0.1:1/refarch"
    assert "postgres" in report.errors  # it did try, and failed
    assert "database_url:    postgresql://admin:***@127.0.0.1:1/refarch" in format_status(report)
    assert SECRET not in format_status(report) and SECRET not in json.dumps(report.to_json())

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for argv in (["db", "status"], ["db", "start"]):
        main(argv)
        out, err = capsys.readouterr()
        assert SECRET not in out + err, argv
        assert "admin:***@127.0.0.1:1" in out + err, (argv, out, err)


def test_the_cli_error_line_shows_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFARCH_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", OWNER)
    assert main(["db", "migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refarch: error: cannot connect to postgresql://admin:***@127.0.0.1:1")
    assert SECRET not in err
