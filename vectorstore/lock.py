"""One writer at a time per index: an advisory file lock in the index folder.

Every writer takes it: ``paperchat index`` and ``delete``, uploads and deletions in the chat app.
Readers never take it (they keep answering while a writer works). A second writer waits up to
``wait_s`` seconds, then fails with :class:`~paperchat.vectorstore.errors.IndexBusyError` naming the process that
holds it. With a Chroma server the lock file is in the local ``db`` folder, so writers on this machine
are serialised; the server itself keeps concurrent writes from other machines consistent.

Within a process the lock is re-entrant per thread (a writer that adds texts through the ``VectorStore``
API while it holds the lock does not wait for itself), and threads take turns.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from paperchat.vectorstore.errors import IndexBusyError

LOCK_NAME = ".paperchat-write.lock"
#: One re-entrant lock per index folder in this process (threads take turns; the file lock is for processes).
_THREAD_LOCKS: dict[str, threading.RLock] = {}
_REGISTRY = threading.Lock()
_DEPTH = threading.local()


def writer_lock(settings: Any, wait_s: float = 0.0) -> AbstractContextManager[None]:
    """The write lock of the index the settings describe."""
    return write_lock(settings.db, wait_s=wait_s)


def _busy(folder: str | Path, holder: str) -> IndexBusyError:
    return IndexBusyError(
        f"The index at {folder} is busy: {holder} is writing to it. "
        "Try again when it has finished (paperchat index and delete can wait: --wait SECONDS)."
    )


@contextmanager
def write_lock(folder: str | Path, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[None]:
    """Hold the index's write lock for the duration of the ``with`` block."""
    key = str(Path(folder).resolve())
    with _REGISTRY:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.RLock())
    acquired = thread_lock.acquire(timeout=wait_s) if wait_s > 0 else thread_lock.acquire(blocking=False)
    if not acquired:
        raise _busy(folder, "another thread of this process")
    depth = getattr(_DEPTH, key, 0)
    try:
        setattr(_DEPTH, key, depth + 1)
        if depth:  # this thread holds the file lock already
            yield
        else:
            with _file_lock(folder, wait_s, poll_s):
                yield
    finally:
        setattr(_DEPTH, key, depth)
        thread_lock.release()


@contextmanager
def _file_lock(folder: str | Path, wait_s: float, poll_s: float) -> Iterator[None]:
    import fcntl

    path = Path(folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    held = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    raise _busy(folder, holder) from None
                # polling a non-blocking lock: flock has no timeout, and a blocking call cannot be interrupted
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"paperchat pid {os.getpid()}".encode(), 0)
        yield
    finally:
        if held:
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the lock
