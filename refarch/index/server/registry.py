"""The indexes under one data directory, and the background thread that maintains them.

Layout of ``<data_dir>``::

    LOCK                      held (flock) by the one server using the directory
    indexes/<name>/index.json the index's configuration
    indexes/<name>/records.db the records (SQLite, source of truth)
    indexes/<name>/snapshots/ namespace snapshots (derived; rebuilt from records if lost)

Creating an index writes its folder under a temporary name and renames it into place;
deleting renames it away before removing it, so a crash never leaves half an index.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import IO

from refarch.errors import IndexServiceError
from refarch.index.server.api_errors import ApiError, not_found
from refarch.index.server.engine import IndexConfig, IndexEngine
from refarch.index.server.snapshots import fsync_dir
from refarch.index.server.tuning import Tuning
from refarch.logs import event

log = logging.getLogger("refarch.index.server")

#: Pinecone's rule for index names: 1-45 lowercase letters, digits and hyphens.
INDEX_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")


def _lock_data_dir(data_dir: Path) -> IO[str]:
    handle = open(data_dir / "LOCK", "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise IndexServiceError(
            f"{data_dir} is in use by another index server (pid {owner}); stop it or use "
            f"another data directory"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class Registry:
    """Every index of a data directory; thread-safe."""

    def __init__(self, data_dir: Path, tuning: Tuning | None = None) -> None:
        self.data_dir = data_dir
        self.tuning = tuning or Tuning()
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_handle = _lock_data_dir(data_dir)
        self.root = data_dir / "indexes"
        self.root.mkdir(exist_ok=True)
        self.engines: dict[str, IndexEngine] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._open_all()
        except BaseException:
            self._lock_handle.close()
            raise

    def _open_all(self) -> None:
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith("."):
                shutil.rmtree(folder, ignore_errors=True)  # an interrupted create or delete
                continue
            config_path = folder / "index.json"
            if config_path.exists():
                config = IndexConfig.load(config_path)
                self.engines[config.name] = IndexEngine(folder, config, self.tuning)

    # -- indexes -----------------------------------------------------------------------------

    def get(self, name: str) -> IndexEngine:
        """The index called ``name``, or a 404 like Pinecone's."""
        engine = self.engines.get(name)
        if engine is None:
            raise not_found(f"Resource {name} not found")
        return engine

    def list(self) -> list[IndexEngine]:
        """All indexes, oldest first."""
        return sorted(self.engines.values(), key=lambda e: e.config.created_at)

    def create(self, config: IndexConfig) -> IndexEngine:
        """Create an index (409 if the name is taken)."""
        with self._guard:
            if config.name in self.engines:
                raise ApiError(409, f"Resource {config.name} already exists")
            tmp = self.root / f".tmp-{uuid.uuid4().hex}"
            tmp.mkdir()
            config.save(tmp / "index.json")
            final = self.root / config.name
            os.rename(tmp, final)
            fsync_dir(self.root)
            engine = IndexEngine(final, config, self.tuning)
            self.engines[config.name] = engine
        event(log, "index_created", index=config.name, dimension=config.dimension,
              metric=config.metric)
        return engine

    def delete(self, name: str) -> None:
        """Delete an index and its data (403 while deletion protection is on)."""
        with self._guard:
            engine = self.get(name)
            if engine.config.deletion_protection == "enabled":
                raise ApiError(
                    403,
                    f"Deletion protection is enabled for index {name!r}; disable it with "
                    f"configure_index before deleting the index",
                )
            del self.engines[name]
        engine.close(snapshot=False)
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        os.rename(engine.folder, trash)
        fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        event(log, "index_deleted", index=name)

    def save_config(self, engine: IndexEngine) -> None:
        """Persist a changed configuration (deletion protection, tags)."""
        with self._guard:
            engine.config.save(engine.folder / "index.json")

    # -- background work ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that indexes pending vectors and writes snapshots."""
        self._thread = threading.Thread(target=self._maintain, name="index-maintenance",
                                        daemon=True)
        self._thread.start()

    def _maintain(self) -> None:
        # Acknowledging writes and answering queries come first: the graph builder (and the
        # threads hnswlib starts from here, which inherit it) runs at a lower CPU priority.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        last_snapshot_check = 0.0
        while not self._stop.is_set():
            worked = False
            for engine in list(self.engines.values()):
                try:
                    worked = engine.index_step() or worked
                except Exception as exc:  # noqa: BLE001 - keep maintaining the others
                    event(log, "indexing_failed", level=logging.ERROR, index=engine.config.name,
                          error=repr(exc))
            now = time.monotonic()
            if now - last_snapshot_check >= 0.5:
                last_snapshot_check = now
                for engine in list(self.engines.values()):
                    try:
                        engine.snapshot_step()
                    except Exception as exc:  # noqa: BLE001
                        event(log, "snapshot_failed", level=logging.ERROR,
                              index=engine.config.name, error=repr(exc))
            if not worked:
                self._stop.wait(0.05)
            else:
                time.sleep(0.001)  # let queries waiting on the namespace lock in

    def snapshot_all(self) -> None:
        """Snapshot every namespace with changes now."""
        for engine in list(self.engines.values()):
            engine.snapshot_step(force=True)

    def close(self) -> None:
        """Stop background work, snapshot what changed, close every index, unlock the dir."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for engine in list(self.engines.values()):
            engine.close(snapshot=True)
        self._lock_handle.close()
