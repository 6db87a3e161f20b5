"""The change log: an ordered record, kept in the store beside the papers, of every change to a document.

Every write to an index appends one entry to ``<collection>__changes`` (embedded folder and Chroma server
alike): a paper written or replaced (``write``), a document removed (``remove``), its files renamed
(``paths``), texts added or deleted through the ``VectorStore`` API (``texts``). An entry names the
documents it touches; it is added ``open`` before the change starts and marked ``done`` when it ends.
Clients bring what they derive from the index (the keyword sidecar, :mod:`paperchat.vectorstore.lexical`)
up to date by reading the entries after the last one they applied, instead of the whole collection; for
each document named they read its current state, so applying an entry twice does no harm, and they never
go past an entry that is still open (its change is under way; they keep answering from the state before).

Entry ids are their sequence numbers (``000000000042``). Only the holder of the write lock appends
(:mod:`paperchat.vectorstore.lock`), so numbers cannot interleave; a writer that lost its lease and
appends anyway is caught, because ``add`` keeps the first record of an id and the writer reads its entry
back. A ``head`` record holds the last number and the log's ``epoch``, which changes when the collection
is rebuilt (followers then start over). A writer that stopped mid-change leaves its entry open; the next
writer closes it when it takes the lock, and a follower treats it as closed as soon as its writer's lease
(or, on this machine, its process) is gone. Either way the documents it touched are read as they are:
a paper left ``partial`` stays invisible until a rerun writes it again, with a new entry.

Example:
    >>> with index.changes.record("remove", ["38cc55fbbcfee4cb"]):  # doctest: +SKIP
    ...     ...  # delete the document's chunks and record
    >>> [c.op for c in index.changes.after(0)]  # doctest: +SKIP
    ['write', 'remove']
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from paperchat.vectorstore.errors import WriteLeaseLostError
from paperchat.vectorstore.lease import gone_from_this_machine, this_machine
from paperchat.vectorstore.lock import check_writer, holds_writer, lock_key, writer_lock, writer_token

CHANGES_SUFFIX = "__changes"
HEAD_ID = "head"
OPS = ("write", "remove", "paths", "texts")
#: Per index, in this process: one append at a time, and the next number while the lock is held (every
#: ``PaperIndex`` object of the same index shares them, so two objects cannot take the same number).
_APPENDING: dict[str, threading.RLock] = {}
_NEXT: dict[str, tuple[str, int]] = {}
_REGISTRY = threading.Lock()


def change_id(seq: int) -> str:
    """The record id of entry ``seq`` (zero-padded, so that ids sort as numbers)."""
    return f"{seq:012d}"


@dataclass(slots=True)
class Change:
    """One entry of the change log."""

    seq: int
    op: str
    doc_ids: list[str]
    done: bool
    meta: dict[str, Any]


def _change(meta: dict[str, Any]) -> Change:
    return Change(int(meta["seq"]), str(meta.get("op", "")), [d for d in str(meta.get("docs", "")).split("\n") if d],
                  meta.get("state") != "open", meta)


def entry_fingerprint(meta: dict[str, Any]) -> str:
    """The fingerprint of a change log entry (see :meth:`ChangeLog.fingerprint`)."""
    return f"{meta.get('token', '')}/{meta.get('at', '')}"


class ChangeLog:
    """The change log of one paperchat collection.

    Args:
        collection: The ``<collection>__changes`` collection (a guarded Chroma collection).
        settings: The index's settings (for its write lock).
        leases: The ``<collection>__lease`` collection of a Chroma server (None for an embedded store).
    """

    def __init__(self, collection: Any, settings: Any, leases: Any | None = None) -> None:
        self._collection = collection
        self._settings = settings
        self._leases = leases
        self._key = lock_key(settings)
        with _REGISTRY:
            self._mutex = _APPENDING.setdefault(self._key, threading.RLock())

    # -- reading -------------------------------------------------------------------------------

    def epoch(self) -> str:
        """The log's identity: changes when the collection is rebuilt (dropped and made again)."""
        got = self._collection.get(ids=[HEAD_ID], include=["metadatas"])
        if not got["ids"]:
            # the first to look creates it; ``add`` keeps the first record of an id, so all agree on it
            self._collection.add(ids=[HEAD_ID], metadatas=[{"seq": 0, "epoch": uuid.uuid4().hex}], embeddings=[[1.0]])
            got = self._collection.get(ids=[HEAD_ID], include=["metadatas"])
        return str(got["metadatas"][0]["epoch"])

    def head(self) -> int:
        """The last entry's number as the head record says (a writer stopped mid-way may have added one more)."""
        got = self._collection.get(ids=[HEAD_ID], include=["metadatas"])
        return int(got["metadatas"][0]["seq"]) if got["ids"] else 0

    def after(self, seq: int, limit: int = 1000) -> list[Change]:
        """The entries after ``seq`` (up to ``limit``), in order. Reads a few ids first, so that asking
        when nothing changed costs one small read."""
        return self.look(seq, limit)[1]

    def look(self, seq: int, limit: int = 1000) -> tuple[str, list[Change]]:
        """The fingerprint of entry ``seq`` (see :meth:`fingerprint`) and the entries after it (up to
        ``limit``, in order), read together: what a follower asks every time it looks."""
        out: list[Change] = []
        anchor = ""
        batch = 8
        while len(out) < limit:
            start = seq + len(out) + 1
            ids = [change_id(s) for s in range(start, start + min(batch, limit - len(out)))]
            first = not out and seq > 0 and batch == 8
            got = self._collection.get(ids=[change_id(seq), *ids] if first else ids, include=["metadatas"])
            metas = [m for m in got["metadatas"] if m]
            if first:
                at_seq = [m for m in metas if int(m.get("seq", -1)) == seq]
                anchor = entry_fingerprint(at_seq[0]) if at_seq else "missing"
                metas = [m for m in metas if int(m.get("seq", -1)) != seq]
            found = sorted((_change(m) for m in metas), key=lambda c: c.seq)
            for change in found:  # entries are added in order: stop at the first one not there yet
                if change.seq != seq + len(out) + 1:
                    return anchor, out
                out.append(change)
            if len(found) < len(ids):
                return anchor, out
            batch = min(batch * 8, 1000)
        return anchor, out

    def fingerprint(self, seq: int) -> str:
        """What identifies entry ``seq`` (its writer's hold of the lock and its time): a follower keeps the
        one of the entry it applied last, and a log that no longer has it there (a server folder restored
        from a backup, whose numbers go on from an earlier point) is copied again, not followed."""
        if seq <= 0:
            return ""
        got = self._collection.get(ids=[change_id(seq)], include=["metadatas"])
        return entry_fingerprint(got["metadatas"][0]) if got["ids"] else "missing"

    def end(self) -> int:
        """The number of the last entry."""
        seq = self.head()
        while True:
            more = self.after(seq)
            if not more:
                return seq
            seq = more[-1].seq

    def open_changes(self) -> list[Change]:
        """Entries that are still open (changes under way, or left by a writer that stopped)."""
        got = self._collection.get(where={"state": "open"}, include=["metadatas"])
        return sorted((_change(m) for m in got["metadatas"] if m), key=lambda c: c.seq)

    def settled(self) -> int:
        """The last number up to which every change has ended: what a copy made now reflects."""
        end = self.end()
        pending = [c.seq for c in self.open_changes() if not self.abandoned(c)]
        return min([end, *(s - 1 for s in pending)])

    def abandoned(self, change: Change) -> bool:
        """True for an open entry whose writer is gone: its lease is no longer on the server, or it was a
        process of this machine that has ended."""
        if change.done:
            return True
        if gone_from_this_machine(change.meta):
            return True
        lease = str(change.meta.get("lease", ""))
        if lease and self._leases is not None:
            return not self._leases.get(ids=[lease], include=[])["ids"]
        return False

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def record(self, op: str, doc_ids: Iterable[str]) -> Iterator[int]:
        """Append an entry for a change to these documents, open for the ``with`` block and done after it
        (also when it fails: the documents are then read as they were left). Takes the index's write lock
        unless this process holds it already. Yields the entry's number."""
        if op not in OPS:
            raise ValueError(f"unknown change {op!r}")
        docs = sorted(dict.fromkeys(doc_ids))
        with ExitStack() as stack:
            if not holds_writer(self._settings):
                stack.enter_context(writer_lock(self._settings, wait_s=self._settings.write_wait_s))
            stack.enter_context(self._mutex)
            check_writer(self._settings)
            token = writer_token(self._settings) or ""
            host, boot = this_machine()
            while True:
                seq = self._next_number(token)
                nonce = uuid.uuid4().hex
                meta = {"seq": seq, "op": op, "docs": "\n".join(docs), "state": "open", "token": token, "nonce": nonce,
                        "lease": token if self._settings.uses_server else "", "host": host, "boot": boot,
                        "pid": os.getpid(), "at": time.time()}
                # ``add`` keeps the first record of an id: reading it back tells whether this one is it
                self._collection.add(ids=[change_id(seq)], metadatas=[meta], embeddings=[[1.0]])
                stored = (self._collection.get(ids=[change_id(seq)], include=["metadatas"])["metadatas"] or [{}])[0] or {}
                if stored.get("nonce") == nonce:
                    break
                _NEXT.pop(self._key, None)
                if stored.get("token") != token:
                    raise WriteLeaseLostError(
                        f"Another writer recorded change {seq} of {self._settings.location()} at the same time: this "
                        "writer's lease had expired. Nothing more is written by it; run the command again."
                    )
                # taken by a change made through another object of this process in this same hold: next number
            _NEXT[self._key] = (token, seq + 1)
            try:
                yield seq
            finally:
                self._collection.update(ids=[change_id(seq)], metadatas=[{"state": "done"}])
                self._collection.update(ids=[HEAD_ID], metadatas=[{"seq": seq}])

    def _next_number(self, token: str) -> int:
        """The next entry's number. At the first change of a new hold of the lock: the end of the log is
        found, and entries left open by writers that stopped are closed (no one else can be writing)."""
        cached = _NEXT.get(self._key)
        if cached is not None and cached[0] == token:
            return cached[1]
        self.epoch()  # the head record exists from here on
        for change in self.open_changes():
            self._collection.update(ids=[change_id(change.seq)], metadatas=[{"state": "done", "abandoned": True}])
        return self.end() + 1
