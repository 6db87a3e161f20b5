"""Calls to Chroma made safe: a server that went away is one clear error, and a store that another
process has written to is reopened instead of failing.

Every call on a :class:`GuardedCollection` goes to the current collection of its
:class:`~paperchat.vectorstore.index.PaperIndex`, under a shared lock; reopening the store takes the
lock exclusively, so it waits for the calls in flight and no call sees a closed client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from paperchat.vectorstore.errors import IndexUnavailableError


class SharedExclusiveLock:
    """Many holders at once (``shared``) or one alone (``exclusive``); exclusive waiters go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def is_transport_error(exc: BaseException) -> bool:
    """True for a failure to reach the store (connection refused or reset, timeout), not a bad request."""
    seen: BaseException | None = exc
    for _ in range(5):  # the library may wrap the transport error
        if seen is None:
            return False
        if isinstance(seen, (ConnectionError, TimeoutError)) or type(seen).__module__.split(".")[0] in ("httpx", "httpcore"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_stale_store_error(exc: BaseException) -> bool:
    """True when an embedded store asks for records whose vectors it has not loaded: another process wrote
    them after this one opened the store."""
    return type(exc).__name__ == "InternalError" and "Error finding id" in str(exc)


class GuardedCollection:
    """A Chroma collection of a paper index, by role (``chunks``, ``docs``, ``refs``)."""

    def __init__(self, owner: Any, role: str) -> None:
        self._owner = owner
        self._role = role

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._owner.collections[self._role], name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            from paperchat.vectorstore.index import index_unavailable_message

            for attempt in (1, 2):
                try:
                    with self._owner._store_lock.shared():
                        return getattr(self._owner.collections[self._role], name)(*args, **kwargs)
                except Exception as exc:
                    if is_transport_error(exc):
                        raise IndexUnavailableError(index_unavailable_message(self._owner.settings, exc)) from exc
                    if attempt == 1 and is_stale_store_error(exc) and self._owner.reopen():
                        continue
                    raise
            raise AssertionError("unreachable")

        return call
