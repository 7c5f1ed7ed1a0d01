"""How `refarch lab` starts JupyterLab: loopback, token, offline, root only when root."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from refarch.tutorial import lab


def test_the_command_binds_loopback_with_the_token_and_fails_on_a_taken_port(tmp_path: Path) -> None:
    command = lab.lab_command(port=18888, token="t0k", root=tmp_path)
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    for flag in ("--ServerApp.ip=127.0.0.1", "--ServerApp.port=18888", "--ServerApp.port_retries=0",
                 f"--ServerApp.root_dir={tmp_path}", "--IdentityProvider.token=t0k",
                 "--ServerApp.open_browser=False", "--LabApp.news_url=None",
                 "--LabApp.extension_manager=readonly"):
        assert flag in command
    assert lab.lab_url(18888, "t0k") == "http://127.0.0.1:18888/lab?token=t0k"


@pytest.mark.parametrize("euid", [0, 1000])
def test_root_is_allowed_only_for_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, euid: int) -> None:
    monkeypatch.setattr(lab.os, "geteuid", lambda: euid)
    command = lab.lab_command(port=1, token="t", root=tmp_path)
    assert ("--ServerApp.allow_root=True" in command) is (euid == 0)


def test_offline_settings_merge_into_what_the_overrides_hold(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.setattr(lab.sys, "prefix", str(tmp_path))
    overrides = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(json.dumps({
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        "@jupyterlab/apputils-extension:notification": {"doNotDisturbMode": True},
    }))
    assert lab.ensure_offline_settings() == overrides
    assert json.loads(overrides.read_text()) == {
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        "@jupyterlab/apputils-extension:notification": {
            "doNotDisturbMode": True, "fetchNews": "false", "checkForUpdates": False},
    }


def test_new_tokens_differ() -> None:
    assert len({lab.new_token() for _ in range(5)}) == 5
