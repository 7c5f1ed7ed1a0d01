"""What a unit test may not do: start a process or load the embedding model.

Unit tests (``tests/unit/``) check the package's own logic in this process, in milliseconds.
Anything that starts a program (``subprocess``, ``multiprocessing``, ``fork``, a server) or
loads sentence-transformers (seconds per process) belongs in ``tests/integration/``.
Inside :func:`forbid_processes_and_model` every such attempt fails with that advice.
"""

from __future__ import annotations

import importlib.abc
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, NoReturn

import pytest

#: The model's library: importing it is the first step of every model load.
MODEL_LIBRARY = "sentence_transformers"
#: Every os function that starts a program (subprocess and multiprocessing end up in these
#: or in the two patched below).
_OS_STARTERS = ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system",
                "execv", "execve", "execvp", "execvpe", "spawnv", "spawnve")
_MOVE = "move the test to tests/integration/"


class UnitTestIsolationError(BaseException):
    """A unit test tried to start a process or to load the model.

    A BaseException, so that no ``except Exception`` in the code under test can turn it into
    an ordinary error (which a test expecting that error would then take for success).
    """


def _refusal(what: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise UnitTestIsolationError(f"a unit test must not {what}: {_MOVE}")

    return refuse


class _RefuseModelImport(importlib.abc.MetaPathFinder):
    """Refuses the first import of the model's library (once it is in ``sys.modules`` an
    import does not get here, so the model class is patched instead)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> None:
        if fullname.split(".")[0] == MODEL_LIBRARY:
            raise UnitTestIsolationError(f"a unit test must not import {MODEL_LIBRARY}: {_MOVE}")
        return None


@contextmanager
def forbid_processes_and_model() -> Iterator[None]:
    """Within the block, starting a process or loading the model raises
    :class:`UnitTestIsolationError`; everything is put back afterwards."""
    import _posixsubprocess

    import refarch.embeddings

    start = _refusal("start a process")
    load = _refusal("load the embedding model")
    with pytest.MonkeyPatch.context() as patch:
        # subprocess's fork_exec and posix_spawn paths both go through _execute_child;
        # multiprocessing's spawn and forkserver call _posixsubprocess.fork_exec directly.
        patch.setattr(subprocess.Popen, "_execute_child", start)
        patch.setattr(_posixsubprocess, "fork_exec", start)
        for name in _OS_STARTERS:
            if hasattr(os, name):
                patch.setattr(os, name, start)
        patch.setattr(refarch.embeddings, "load_embedder", load)
        # ...and a direct reference to load_embedder still reaches a backend's loader.
        patch.setattr(refarch.embeddings, "_load_onnx", load)
        patch.setattr(refarch.embeddings, "_load_sentence_transformer", load)
        # A model an earlier test loaded in this process is not handed out either: a unit test
        # must not pass or fail depending on what ran before it.
        patch.setattr(refarch.embeddings, "_loaded", {})
        library = sys.modules.get(MODEL_LIBRARY)
        if library is not None:  # imported by an earlier test in this process
            patch.setattr(library, "SentenceTransformer", load)
        else:
            patch.setattr(sys, "meta_path", [_RefuseModelImport(), *sys.meta_path])
        yield
