"""One writer at a time per index. :func:`writer_lock` is the one entry point, and it chooses:

* an embedded store (a folder): an advisory file lock in that folder (``flock``), which the operating
  system releases when the holder ends, however it ends;
* a Chroma server: a lease stored in the server itself (:mod:`paperchat.vectorstore.lease`), so writers
  on different machines take turns too; it is renewed while held and expires when its writer stops.

Every writer takes it: ``paperchat index`` and ``delete``, uploads and deletions in the chat app, and the
``VectorStore`` API's writes (``PaperIndex.write_lock()``); every change recorded in the change log
checks it (:mod:`paperchat.vectorstore.changes`). Readers never take it: they keep answering while a
writer works. A second writer waits up to ``wait_s`` seconds (``on_wait`` is told whom for), then fails
with :class:`~paperchat.vectorstore.errors.IndexBusyError` naming the writer that holds it (host, pid,
since when).

Within a process the lock is re-entrant per thread (a writer that adds texts through the ``VectorStore``
API while it holds the lock does not wait for itself), and threads take turns.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from paperchat.vectorstore.errors import IndexBusyError

LOCK_NAME = ".paperchat-write.lock"
#: One re-entrant lock per index in this process (threads take turns; the file lock or lease is for processes).
_THREAD_LOCKS: dict[str, threading.RLock] = {}
_REGISTRY = threading.Lock()
_DEPTH = threading.local()
#: What this process holds, by index: the file lock's or the lease's guard (see :func:`check_writer`).
_HELD: dict[str, Any] = {}

OnWait = Callable[[str], None]


def lock_key(settings: Any) -> str:
    """What one lock covers: an index folder, or one collection on one Chroma server."""
    if getattr(settings, "uses_server", False):
        return f"chroma://{settings.chroma_host}:{settings.chroma_port}/{settings.collection}"
    return str(Path(settings.db).resolve())


def current_command() -> str:
    """What this process is, for other writers' messages: 'paperchat index', 'streamlit run', ..."""
    argv = sys.argv or ["python"]
    program = Path(argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name  # python -m NAME
    return " ".join([name or "python", *argv[1:2]])


def writer_lock(
    settings: Any, wait_s: float = 0.0, on_wait: OnWait | None = None, command: str | None = None
) -> AbstractContextManager[None]:
    """The write lock of the index the settings describe: a file lock in its folder, or the lease on its
    Chroma server. Waits up to ``wait_s`` seconds; ``on_wait`` hears whom for."""
    what = command or current_command()
    if getattr(settings, "uses_server", False):
        from paperchat.vectorstore.lease import ServerLease

        def take_lease() -> AbstractContextManager[Any]:
            return _lease(ServerLease(settings, command=what), wait_s, on_wait)

        return _reentrant(lock_key(settings), settings.location(), wait_s, take_lease)
    return write_lock(settings.db, wait_s=wait_s, on_wait=on_wait, command=what)


def write_lock(
    folder: str | Path, wait_s: float = 0.0, poll_s: float = 0.2, on_wait: OnWait | None = None, command: str | None = None
) -> AbstractContextManager[None]:
    """Hold an index folder's write lock (a file lock) for the duration of the ``with`` block."""
    what = command or current_command()
    return _reentrant(str(Path(folder).resolve()), str(folder), wait_s,
                      lambda: _file_lock(folder, wait_s, poll_s, on_wait, what))


def holds_writer(settings: Any) -> bool:
    """True while some thread of this process holds the write lock of this index."""
    return lock_key(settings) in _HELD


def writer_token(settings: Any) -> str | None:
    """An id of this process's current hold of the lock (a new one at every acquisition), or None."""
    guard = _HELD.get(lock_key(settings))
    return None if guard is None else guard.token


def check_writer(settings: Any) -> None:
    """Raise :class:`~paperchat.vectorstore.errors.WriteLeaseLostError` if this process held the index's
    lease and lost it (it expired while the writer was stopped or cut off)."""
    guard = _HELD.get(lock_key(settings))
    if guard is not None:
        guard.check()


def _busy(where: str, holder: str) -> IndexBusyError:
    return IndexBusyError(
        f"The index at {where} is busy: {holder}. "
        "Try again when it has finished (paperchat index and delete can wait: --wait SECONDS)."
    )


@contextmanager
def _reentrant(key: str, where: str, wait_s: float, take: Callable[[], AbstractContextManager[Any]]) -> Iterator[None]:
    """Threads of this process take turns; the first hold in a thread takes the cross-process lock."""
    with _REGISTRY:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.RLock())
    acquired = thread_lock.acquire(timeout=wait_s) if wait_s > 0 else thread_lock.acquire(blocking=False)
    if not acquired:
        raise _busy(where, "another thread of this process is writing to it")
    depth = getattr(_DEPTH, key, 0)
    try:
        setattr(_DEPTH, key, depth + 1)
        if depth:  # this thread holds the cross-process lock already
            yield
        else:
            with take() as guard:
                _HELD[key] = guard
                try:
                    yield
                finally:
                    _HELD.pop(key, None)
    finally:
        setattr(_DEPTH, key, depth)
        thread_lock.release()


class _FileGuard:
    """A held file lock: nothing can take it away, so it is never lost."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex

    def check(self) -> None:
        pass


@contextmanager
def _lease(lease: Any, wait_s: float, on_wait: OnWait | None) -> Iterator[Any]:
    lease.acquire(wait_s, on_wait)
    try:
        yield lease
    finally:
        lease.release()


@contextmanager
def _file_lock(folder: str | Path, wait_s: float, poll_s: float, on_wait: OnWait | None, command: str) -> Iterator[_FileGuard]:
    import fcntl

    path = Path(folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    held = False
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                if time.monotonic() >= deadline:
                    raise _busy(str(folder), holder) from None
                if on_wait is not None and not told:
                    on_wait(holder)
                    told = True
                # polling a non-blocking lock: flock has no timeout, and a blocking call cannot be interrupted
                time.sleep(poll_s)
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{command} on host {socket.gethostname()}, pid {os.getpid()} (writing since {since})".encode(), 0)
        yield _FileGuard()
    finally:
        if held:
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the lock
