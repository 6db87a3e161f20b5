"""One writer at a time per index: an advisory file lock in the index folder.

Every writer takes it: ``paperchat index`` and ``delete``, uploads and deletions in the chat app.
Readers never take it (they keep answering while a writer works). A second writer waits up to
``wait_s`` seconds, then fails with :class:`~paperchat.vectorstore.errors.IndexBusyError` naming the process that
holds it. With a Chroma server the lock file is in the local ``db`` folder, so writers on this machine
are serialised; the server itself keeps concurrent writes from other machines consistent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from paperchat.vectorstore.errors import IndexBusyError

LOCK_NAME = ".paperchat-write.lock"


def writer_lock(settings: Any, wait_s: float = 0.0) -> AbstractContextManager[None]:
    """The write lock of the index the settings describe."""
    return write_lock(settings.db, wait_s=wait_s)


@contextmanager
def write_lock(folder: str | Path, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[None]:
    """Hold the index's write lock for the duration of the ``with`` block."""
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
                    raise IndexBusyError(
                        f"The index at {folder} is busy: {holder} is writing to it. "
                        "Try again when it has finished (paperchat index and delete can wait: --wait SECONDS)."
                    ) from None
                # polling a non-blocking lock: flock has no timeout, and a blocking call cannot be interrupted
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"paperchat pid {os.getpid()}".encode(), 0)
        yield
    finally:
        if held:
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the lock
