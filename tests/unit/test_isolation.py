"""The unit tests' guard (tests/unit/conftest.py): no process is started, no model loaded."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from refarch.embeddings import get_embedder, load_embedder
from refarch.settings import Settings
from tests.support.isolation import MODEL_LIBRARY, UnitTestIsolationError


def _spawn_a_child() -> None:
    context = multiprocessing.get_context("spawn")
    context.Process(target=print).start()


@pytest.mark.parametrize(
    "start",
    [
        lambda: subprocess.run(["true"], check=False),
        lambda: subprocess.Popen([sys.executable, "-c", "pass"]),
        lambda: os.system("true"),
        lambda: os.fork(),
        lambda: os.posix_spawn("/bin/true", ["true"], {}),
        _spawn_a_child,
    ],
    ids=["subprocess.run", "Popen", "os.system", "os.fork", "posix_spawn", "multiprocessing"],
)
def test_starting_a_process_fails_the_test(start: Callable[[], object]) -> None:
    with pytest.raises(UnitTestIsolationError, match="must not start a process.*tests/integration"):
        start()


@pytest.mark.parametrize("load", [lambda: get_embedder(Settings()), lambda: load_embedder("x")],
                         ids=["get_embedder", "load_embedder"])
def test_loading_the_model_fails_the_test(load: Callable[[], object]) -> None:
    with pytest.raises(UnitTestIsolationError, match="must not (load the embedding model|import)"):
        load()


def test_importing_the_model_library_fails_the_test() -> None:
    if MODEL_LIBRARY in sys.modules:  # another test in this process imported it: it is patched
        from sentence_transformers import SentenceTransformer

        with pytest.raises(UnitTestIsolationError, match="must not load the embedding model"):
            SentenceTransformer("all-MiniLM-L6-v2")
    else:
        with pytest.raises(UnitTestIsolationError, match=f"must not import {MODEL_LIBRARY}"):
            import sentence_transformers  # noqa: F401


@pytest.fixture(scope="module")
def started_by_a_module_fixture() -> Iterator[BaseException | None]:
    try:
        subprocess.run(["true"], check=False)
    except UnitTestIsolationError as refused:
        yield refused
    else:
        yield None


def test_fixtures_of_any_scope_are_covered(started_by_a_module_fixture: BaseException | None) -> None:
    assert isinstance(started_by_a_module_fixture, UnitTestIsolationError)
