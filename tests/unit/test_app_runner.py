"""How the app is launched: the page exists, binds where the settings say, hides tracebacks."""

from __future__ import annotations

from refarch.cli import build_parser
from refarch.settings import Settings
from refarch.webapp.runner import app_script, app_url, streamlit_command


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_command_serves_the_page_on_loopback_by_default() -> None:
    command = streamlit_command(Settings.from_env({}))
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4] == str(app_script()) and app_script().is_file()
    assert _option(command, "--server.address") == "127.0.0.1"
    assert _option(command, "--server.port") == "8501"
    assert _option(command, "--client.showErrorDetails") == "none"
    assert _option(command, "--server.headless") == "true"


def test_container_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"REFARCH_APP_HOST": "0.0.0.0", "REFARCH_APP_PORT": "8080"})
    command = streamlit_command(settings)
    assert _option(command, "--server.address") == "0.0.0.0"
    assert _option(command, "--server.port") == "8080"
    assert app_url(settings) == "http://127.0.0.1:8080/"
    assert app_url(settings, host="::1", port=9) == "http://[::1]:9/"


def test_cli_has_an_app_command() -> None:
    args = build_parser().parse_args(["app", "--port", "9999"])
    assert args.port == 9999 and callable(args.func)
