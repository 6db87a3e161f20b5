"""One writer at a time across machines: a write lease stored in the Chroma server itself.

Writers on several machines share one Chroma server, so a lock file on one machine cannot serialise
them. They take a lease kept in a small paperchat-owned collection beside the papers
(``<collection>__lease``). Chroma has no compare-and-swap, so the lease is Lamport's bakery algorithm,
which needs only records that each contender writes itself and reads of all of them:

1. **Doorway.** A contender adds a ticket of its own (a random id) marked ``choosing``, reads every
   ticket, and takes the number one above the highest it saw (``waiting``).
2. **Wait.** It reads every ticket again, until no other ticket is ``choosing`` and none has a lower
   ``(number, id)`` than its own. Then it holds the lease (``holding``, for the record).
3. **Release.** It deletes its ticket.

Why two contenders cannot both hold it: if A passed step 2 while B's ticket was absent or choosing, B
read A's number after A wrote it, so B's number is higher and B waits for A. If both had numbers, the
lower ``(number, id)`` wins. Waiting for ``choosing`` tickets closes the gap in between. It needs each
write to be seen by every read that starts after it returns, which one ``chroma run`` server gives.

Every ticket records its owner (host, pid, command), when it was started and last renewed, and when it
expires. A thread renews it every quarter of ``PAPERCHAT_LEASE_TTL_S`` from the doorway on, waiting
included. A contender counts another ticket as dead, deletes it and goes on, when its renewal counter
has not moved for that ticket's time to live, as measured by the contender's own clock (so clocks of
different machines need not agree), or at once when it belongs to a process of this machine that no
longer exists. A writer whose ticket was deleted (it stopped renewing for longer than its time to live,
e.g. a suspended laptop) has lost the lease: its renewal thread notices and its next write refuses to go
on (:func:`paperchat.vectorstore.lock.check_writer`), and the change log's numbering catches a write
that slips through (:mod:`paperchat.vectorstore.changes`).

Example:
    >>> lease = ServerLease(Settings(chroma_host="127.0.0.1"), command="paperchat index")  # doctest: +SKIP
    >>> lease.acquire(wait_s=30)  # doctest: +SKIP
    >>> lease.release()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from paperchat.vectorstore.errors import IndexBusyError, IndexUnavailableError, WriteLeaseLostError
from paperchat.vectorstore.settings import Settings

LEASE_SUFFIX = "__lease"
#: Seconds between two reads of the tickets while waiting for the lease.
POLL_S = 0.25


@lru_cache(maxsize=1)
def this_machine() -> tuple[str, str]:
    """(host name, boot id and process namespace): a process recorded with the same pair runs (or ran)
    where this one can check whether it is alive. Empty when that cannot be known (not Linux)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
        boot += "/" + os.readlink("/proc/self/ns/pid")  # containers on one host share the boot id, not this
    except OSError:
        boot = ""
    return socket.gethostname(), boot


def process_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (or cannot be checked)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def gone_from_this_machine(meta: dict[str, Any]) -> bool:
    """True when a record names a process of this machine (and boot) that has ended."""
    host, boot = this_machine()
    if not boot or meta.get("host") != host or meta.get("boot") != boot:
        return False
    pid = int(meta.get("pid", 0) or 0)
    return pid > 0 and pid != os.getpid() and not process_alive(pid)


def clock(ts: float) -> str:
    """A wall-clock time for messages (local time, to the second)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@dataclass(slots=True)
class Holder:
    """Who holds (or waits for) the lease, as its ticket says."""

    host: str
    pid: int
    command: str
    since: float
    renewed: float
    ttl_s: float
    holding: bool

    def describe(self) -> str:
        """'paperchat index on host lab-pc, pid 4242 (writing since 2026-11-25 10:02:03)'."""
        doing = "writing" if self.holding else "waiting to write"
        return f"{self.command or 'paperchat'} on host {self.host}, pid {self.pid} ({doing} since {clock(self.since)})"


def _holder(meta: dict[str, Any]) -> Holder:
    return Holder(
        host=str(meta.get("host", "?")), pid=int(meta.get("pid", 0) or 0), command=str(meta.get("command", "")),
        since=float(meta.get("since") or meta.get("started") or 0.0), renewed=float(meta.get("heartbeat", 0.0) or 0.0),
        ttl_s=float(meta.get("ttl", 0.0) or 0.0), holding=meta.get("state") == "holding",
    )


class ServerLease:
    """The write lease of one collection on a Chroma server (see the module docstring for the protocol).

    Args:
        settings: The server and collection; ``lease_ttl_s`` is how long a lease lasts unrenewed.
        command: What this writer is, for the messages other writers see (``paperchat index``).
        client: An existing Chroma client of that server.
    """

    def __init__(self, settings: Settings, command: str = "", client: Any | None = None) -> None:
        from paperchat.vectorstore.index import make_client

        self.settings = settings
        self.command = command
        self.ttl_s = float(settings.lease_ttl_s)
        self._client = client or make_client(settings)
        self._collection = self._call(
            lambda: self._client.get_or_create_collection(settings.collection + LEASE_SUFFIX, embedding_function=None)
        )
        self.ticket = ""
        self.number = 0
        self.held = False
        #: Why the lease was lost ("" while it is not): set by the renewal thread.
        self.lost = ""
        self._beat = 0
        self._renewed = 0.0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._seen: dict[str, tuple[int, float]] = {}  # other tickets: (renewal counter, when it last moved)

    @property
    def token(self) -> str:
        """This hold's id (the ticket's)."""
        return self.ticket

    # -- talking to the server -----------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        from paperchat.vectorstore.guard import is_transport_error
        from paperchat.vectorstore.index import index_unavailable_message

        try:
            return fn()
        except Exception as exc:
            if is_transport_error(exc):
                raise IndexUnavailableError(index_unavailable_message(self.settings, exc)) from exc
            raise

    def tickets(self) -> dict[str, dict[str, Any]]:
        """Every ticket on the server, by id."""
        got = self._call(lambda: self._collection.get(include=["metadatas"]))
        return {tid: dict(meta or {}) for tid, meta in zip(got["ids"], got["metadatas"], strict=True)}

    def _update(self, **fields: Any) -> None:
        ticket = self.ticket
        self._call(lambda: self._collection.update(ids=[ticket], metadatas=[fields]))

    # -- acquiring -----------------------------------------------------------------------------

    def acquire(self, wait_s: float = 0.0, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lease, waiting up to ``wait_s`` seconds for the writers ahead; raises
        :class:`IndexBusyError` naming the writer in the way. ``on_wait`` is told (once per writer in
        the way) whom this one waits for."""
        deadline = time.monotonic() + wait_s
        self._enter_doorway()
        announced = ""
        try:
            while True:
                if self.lost:  # our ticket was taken for dead while we waited: queue again
                    self._stop_renewing()
                    self._enter_doorway()
                tickets = self._live_tickets()
                if self.ticket not in tickets:
                    self.lost = "its ticket was removed while it waited"
                    continue
                choosing = [t for t, m in tickets.items() if t != self.ticket and m.get("state") == "choosing"]
                ahead = [t for t, m in tickets.items() if t != self.ticket and m.get("state") != "choosing"
                         and (int(m.get("number", 0) or 0), t) < (self.number, self.ticket)]
                if not choosing and not ahead:
                    now = time.time()
                    self._update(state="holding", since=now)
                    self.held = True
                    return
                if ahead:
                    holding = [t for t in ahead if tickets[t].get("state") == "holding"]
                    blocker = (holding or sorted(ahead, key=lambda t: (int(tickets[t].get("number", 0)), t)))[0]
                    if time.monotonic() >= deadline:
                        raise self._busy(_holder(tickets[blocker]))
                    if on_wait is not None and blocker != announced:
                        on_wait(_holder(tickets[blocker]).describe())
                        announced = blocker
                # a contender still in its doorway is waited for even without --wait: it is about to
                # take a number, and giving up on it would let two impatient writers turn each other away
                self._stop.wait(POLL_S)
        except BaseException:
            self.release()
            raise

    def _enter_doorway(self) -> None:
        """Add a ticket (choosing), start renewing it, and take the number after the highest seen."""
        host, boot = this_machine()
        now = time.time()
        self.ticket, self.lost, self._beat, self._renewed = uuid.uuid4().hex, "", 0, time.monotonic()
        meta = {"host": host, "boot": boot, "pid": os.getpid(), "command": self.command, "started": now,
                "heartbeat": now, "expires": now + self.ttl_s, "ttl": self.ttl_s, "beat": 0, "number": 0,
                "state": "choosing"}
        ticket = self.ticket
        self._call(lambda: self._collection.add(ids=[ticket], metadatas=[meta], embeddings=[[1.0]]))
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, args=(self._stop,), name="paperchat-lease", daemon=True)
        self._renewer.start()
        highest = max((int(m.get("number", 0) or 0) for m in self._live_tickets().values()), default=0)
        self.number = highest + 1
        self._update(number=self.number, state="waiting")

    def _live_tickets(self) -> dict[str, dict[str, Any]]:
        """The tickets, after deleting those of writers that stopped renewing them."""
        tickets = self.tickets()
        now = time.monotonic()
        dead = []
        for tid, meta in tickets.items():
            if tid == self.ticket:
                continue
            beat = int(meta.get("beat", 0) or 0)
            seen = self._seen.get(tid)
            if seen is None or seen[0] != beat:
                self._seen[tid] = (beat, now)
                stalled = 0.0
            else:
                stalled = now - seen[1]
            if gone_from_this_machine(meta) or stalled > max(float(meta.get("ttl", self.ttl_s) or self.ttl_s), 0.1):
                dead.append(tid)
        if dead:
            self._call(lambda: self._collection.delete(ids=dead))
            for tid in dead:
                tickets.pop(tid, None)
                self._seen.pop(tid, None)
        return tickets

    def _busy(self, holder: Holder) -> IndexBusyError:
        renewed = max(0.0, time.time() - holder.renewed) if holder.renewed else 0.0
        return IndexBusyError(
            f"The index at {self.settings.location()} is busy: {holder.describe()}; its lease was renewed "
            f"{renewed:.0f} s ago. Try again when it has finished (paperchat index and delete can wait: "
            f"--wait SECONDS; the chat app waits PAPERCHAT_WRITE_WAIT_S). If that writer has stopped, its lease "
            f"expires {holder.ttl_s:.0f} s after its last renewal and the next writer takes over."
        )

    # -- holding -------------------------------------------------------------------------------

    def _renew(self, stop: threading.Event) -> None:
        """Renew the ticket every quarter of its time to live; note when it is lost."""
        interval = max(self.ttl_s / 4, 0.05)
        ticket = self.ticket
        while not stop.wait(interval):
            try:
                exists = self._collection.get(ids=[ticket], include=[])["ids"]
                if not exists:
                    self.lost = "another writer found its lease expired and took over"
                    return
                self._beat += 1
                now = time.time()
                self._collection.update(ids=[ticket], metadatas=[{"beat": self._beat, "heartbeat": now,
                                                                  "expires": now + self.ttl_s}])
                self._renewed = time.monotonic()
            except Exception:  # noqa: BLE001 - the server is unreachable: writes fail on their own
                if time.monotonic() - self._renewed > self.ttl_s:
                    self.lost = f"the lease could not be renewed for {self.ttl_s:.0f} s (server unreachable)"
                    return

    def check(self) -> None:
        """Raise :class:`WriteLeaseLostError` when the lease is no longer this writer's."""
        if self.lost or (self.held and time.monotonic() - self._renewed > self.ttl_s):
            reason = self.lost or f"it was not renewed for {self.ttl_s:.0f} s"
            raise WriteLeaseLostError(
                f"This writer lost its write lease on {self.settings.location()}: {reason}. Nothing more is "
                "written by it; what it stored is kept. Run the command again."
            )

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=30)
        self._renewer = None

    def release(self) -> None:
        """Stop renewing and delete the ticket (a server that is gone is left to expire it)."""
        self._stop_renewing()
        ticket, self.held = self.ticket, False
        if ticket:
            try:
                self._collection.delete(ids=[ticket])
            except Exception:  # noqa: BLE001 - unreachable: the ticket expires, or this host's next writer sees the pid gone
                pass
