"""The container's entry point replaces itself with the resolved command (``os.execvp``): a
command that does not exist is reported, not a traceback. (The resolution itself is checked
without running anything in tests/unit/test_container_image.py.)"""

from __future__ import annotations

import pytest

from refarch.cli.container import main


def test_main_reports_bad_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["no-such-program-anywhere"]) == 127
    assert "command not found: no-such-program-anywhere" in capsys.readouterr().err

