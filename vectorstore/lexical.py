"""Lexical (BM25) search over the chunks, as a SQLite FTS5 index derived from Chroma.

Local Chroma has no sparse/BM25 index, so paperchat keeps one beside it: a SQLite file with an FTS5
table of the chunk texts, stored as the stems of the text toolkit (``paperchat.vectorstore.text``), so
"trained" finds "training" and the index stems exactly as answering does. Chroma stays the source of
truth, so it is always safe to delete the file, and a Chroma server's collection gets a local sidecar on
each machine. A sidecar starts as a bulk copy of the collection's texts (:meth:`LexicalIndex.build`, with
progress; swapped in only when whole), then follows the index's change log
(:mod:`paperchat.vectorstore.changes`): it applies the entries after the last one it applied, reading only
the documents they name, and never goes past a change still under way (:meth:`LexicalIndex.follow`). An
index without a change log is compared with the sidecar document by document (adding and removing whole
documents).

What keeps it fast at a million chunks: the document id and the references flag are indexed columns, so
a search within papers intersects the query's posting lists with those papers' few rows, and leaving out
reference lists needs no row to be read; and a search of the whole collection ranks at most
:data:`POSTINGS_BUDGET` matches: it keeps the query's rarest terms (the ones BM25 weighs most) until their
combined document frequency would exceed the budget, and leaves out the rest (a query of common words
only is left to the dense ranking). Below about ten thousand chunks the budget is never reached. Term
frequencies come from the FTS5 vocabulary, read in the background after each change.

Example:
    >>> lex = LexicalIndex.for_index(index)  # doctest: +SKIP
    >>> lex.search("TITAN Xp GPU", k=5, doc_ids=["38cc55fbbcfee4cb"])  # doctest: +SKIP
    [('38cc55fbbcfee4cb:00031', 7.2), ...]
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from paperchat.vectorstore.changes import entry_fingerprint
from paperchat.vectorstore.text import search_terms

#: Bump when the table layout changes: an older sidecar is dropped and rebuilt from Chroma.
SCHEMA_VERSION = "4"  # 4: chunk texts stored as the text toolkit's stems
#: Most postings (chunk, term) a whole-collection search ranks: ranking costs ~1.5 us per match.
POSTINGS_BUDGET = 20_000
#: Collections of up to this many chunks get their sidecar copied before the first search (a second or two);
#: larger ones in the background, while the dense ranking answers alone.
FOREGROUND_BUILD_MAX = 20_000
#: Batches of texts read from the index at once while a copy is made (inserting them goes on meanwhile).
COPY_READERS = 2
#: Changes applied during a search when the sidecar is behind; a longer backlog is applied in the background.
FOLLOW_NOW_MAX = 64
#: Change log entries applied per transaction.
FOLLOW_BATCH = 200
#: Seconds between two looks at the change log (a write through the same index object is seen at once).
FOLLOW_INTERVAL_S = 1.0
#: Told (chunks copied, chunks in all) while a sidecar is built.
ProgressFn = Callable[[int, int], None]
#: Terms in at least this many chunks have their counts read from the index's vocabulary (in the
#: background after each change); rarer ones are counted when a search needs them, which is quick.
VOCABULARY_MIN_DF = 256


def query_terms(text: str) -> list[str]:
    """Search terms of a question, in order: the stems of its words (split at joiners), without stopwords and
    one-letter words, as the index stores them (:func:`~paperchat.vectorstore.text.search_terms`). A term
    the query repeats is kept repeated: BM25 counts it once per repetition (the query's term frequency)."""
    return search_terms(text, skip_stopwords=True)


def index_text(text: str) -> str:
    """What the index stores for a chunk: its words' stems, space-separated, so that FTS5 (which then only
    splits at spaces) and the rest of paperchat stem alike."""
    return " ".join(search_terms(text))


def _fts_available() -> bool:
    try:
        with sqlite3.connect(":memory:") as conn:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        return True
    except sqlite3.OperationalError:
        return False


FTS5 = _fts_available()


class LexicalIndex:
    """BM25 over chunk texts in a SQLite FTS5 file, kept in step with a Chroma collection.

    Args:
        path: The SQLite file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._conn:
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:  # derived data: rebuilt from Chroma by sync()
                self._conn.execute("DROP TABLE IF EXISTS chunks")
                self._conn.execute("DROP TABLE IF EXISTS docs")
                self._conn.execute("DELETE FROM meta")  # no copy any more: the next sync makes one
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(text, id UNINDEXED, doc_id, refs, "
                "tokenize='unicode61 remove_diacritics 2')"
            )
            self._conn.execute("CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, n_chunks INTEGER, rev INTEGER)")
        self._synced_ids: frozenset[str] | None = None  # None: the first search syncs
        self._common: dict[str, int] | None = None  # frequent (stemmed) terms and their chunk counts
        self._loading = threading.Event()
        self._loader: threading.Thread | None = None
        self._changes = 0
        self._df: dict[str, int] = {}  # chunks containing each term (up to the budget), whole-collection searches
        self._sync_lock = threading.Lock()  # one sync at a time in this process (searches go on meanwhile)
        self._worker: threading.Thread | None = None  # a sync running in the background
        self._epoch: tuple[int, str] | None = None  # (id of the index, its change log's epoch), read once
        self._looked = (-1, 0.0)  # (index generation, time) of the last look at the change log
        #: The last error of a background sync (it is tried again at the next search).
        self.error: BaseException | None = None

    @classmethod
    def for_index(cls, index: Any) -> LexicalIndex:
        """The sidecar of a :class:`~paperchat.vectorstore.index.PaperIndex` (one file per collection)."""
        settings = index.settings
        where = f"{settings.chroma_host}_{settings.chroma_port}_" if settings.uses_server else ""
        return cls(Path(settings.db) / f"lexical-{where}{settings.collection}.sqlite")

    # -- keeping in step with Chroma ---------------------------------------------------------------

    def documents(self) -> dict[str, tuple[int, int]]:
        """Documents in the sidecar with their chunk counts and revisions."""
        with self._lock:
            return {d: (n, rev or 0) for d, n, rev in self._conn.execute("SELECT doc_id, n_chunks, rev FROM docs")}

    def sync(self, index: Any, force: bool = False, progress: ProgressFn | None = None) -> tuple[int, int]:
        """Bring the sidecar up to date with the index now; returns (documents added or updated, removed).

        With a :class:`~paperchat.vectorstore.index.PaperIndex` (which has a change log): a sidecar
        that has no copy of this collection yet (or ``force``) is built in bulk (:meth:`build`, ``progress``
        is told the chunks copied), then the changes recorded since are applied; one that has reads only
        the changes after the last one it applied. Any other index (``list_documents``, ``get_chunks``)
        is compared document by document.
        """
        if getattr(index, "changes", None) is None:
            return self._compare_all(index, force)
        with self._sync_lock:
            added = 0
            if force or not self.is_current(index) or not self.follows_the_log(index):
                added = self.build(index, progress)["documents"]
            more, removed = self._follow_changes(index)
            return added + more, removed

    def follow(self, index: Any) -> bool:
        """Keep up with the index without holding up a search; True when the sidecar can be searched.

        Looks at the change log at most every :data:`FOLLOW_INTERVAL_S` (and after every write through the
        same index object). A few changes are applied at once; a longer backlog, or a first copy of a
        collection of more than :data:`FOREGROUND_BUILD_MAX` chunks, is made in the background while
        searches use the state before (a first copy: none, the dense ranking answers alone). A copy is
        searched only once it is whole.
        """
        if getattr(index, "changes", None) is None:
            self.sync(index)
            return True
        if self._worker is not None and self._worker.is_alive():
            return self.is_current(index)
        if self.is_current(index):
            generation, looked = self._looked
            now = time.monotonic()
            if generation == getattr(index, "generation", 0) and now - looked < FOLLOW_INTERVAL_S:
                return True
            self._looked = (getattr(index, "generation", 0), now)
            anchor, pending = index.changes.look(self.position() or 0, FOLLOW_NOW_MAX + 1)
            if anchor == (self._meta("anchor") or ""):  # still the log this copy follows
                if len(pending) <= FOLLOW_NOW_MAX:
                    if pending:
                        with self._sync_lock:
                            self._follow_changes(index)
                else:
                    self.sync_in_background(index)
                return True
        # no copy of this collection yet, or the log is not the one the copy followed: a new copy
        if index.count_chunks() <= FOREGROUND_BUILD_MAX:
            self.sync(index)
            return True
        self.sync_in_background(index)
        return self.is_current(index)  # a copy of an earlier state of this collection answers meanwhile

    def sync_in_background(self, index: Any) -> None:
        """Run :meth:`sync` in a background thread (unless one runs already)."""
        if self._worker is not None and self._worker.is_alive():
            return

        def run() -> None:
            try:
                self.sync(index)
                self.error = None
            except Exception as exc:  # noqa: BLE001 - kept for the caller; the next search tries again
                self.error = exc

        self._worker = threading.Thread(target=run, name="paperchat-keyword-sync", daemon=True)
        self._worker.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background sync to finish; True when none is running."""
        if self._worker is not None:
            self._worker.join(timeout)
        return self._worker is None or not self._worker.is_alive()

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def position(self) -> int | None:
        """The number of the last change log entry applied (None: no copy of the collection yet)."""
        value = self._meta("cursor")
        return None if value is None else int(value)

    def is_current(self, index: Any) -> bool:
        """True when the sidecar holds a whole copy of this collection (of its change log's epoch)."""
        if self._epoch is None or self._epoch[0] != id(index):
            self._epoch = (id(index), index.changes.epoch())
        return self.position() is not None and self._meta("epoch") == self._epoch[1]

    def follows_the_log(self, index: Any) -> bool:
        """True when the change log still has, at the sidecar's position, the entry applied there last (a
        server folder restored from a backup has another one, or none)."""
        position = self.position()
        return position is not None and index.changes.fingerprint(position) == (self._meta("anchor") or "")

    def last_build(self) -> dict[str, Any] | None:
        """When the sidecar's copy was made, of how many chunks, and how long it took (None: no copy)."""
        if self._meta("built_at") is None:
            return None
        return {"at": self._meta("built_at"), "chunks": int(self._meta("built_chunks") or 0),
                "documents": int(self._meta("built_documents") or 0), "seconds": float(self._meta("built_s") or 0)}

    def build(self, index: Any, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Copy every complete document's chunk texts from the index in bulk, into tables of their own that
        replace the current ones in one transaction when the copy is whole (searches meanwhile use the
        current ones). Records the change log's position the copy reflects, so that the changes made
        during the copy are applied after it. Returns what :meth:`last_build` returns."""
        started = time.perf_counter()
        epoch = index.changes.epoch()
        cursor = index.changes.settled()  # read first: what changes during the copy is applied after it
        anchor = index.changes.fingerprint(cursor)
        records = index.list_documents()
        total = sum(r.chunks for r in records)
        conn = sqlite3.connect(str(self.path), timeout=30)
        try:
            schema = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]
            with conn:
                conn.execute("DROP TABLE IF EXISTS chunks_copy")
                conn.execute("DROP TABLE IF EXISTS docs_copy")
                # the same table (and tokenizer) as the one it replaces, under another name
                conn.execute(re.sub(r"^CREATE VIRTUAL TABLE \"?chunks\"?", "CREATE VIRTUAL TABLE chunks_copy", schema))
                conn.execute("CREATE TABLE docs_copy (doc_id TEXT PRIMARY KEY, n_chunks INTEGER, rev INTEGER)")
            done = 0
            if progress is not None:
                progress(0, total)
            for rows in index.chunk_texts(records, workers=COPY_READERS):
                with conn:
                    conn.executemany("INSERT INTO chunks_copy (text, id, doc_id, refs) VALUES (?, ?, ?, ?)",
                                     [(index_text(text), cid, doc_id, int(refs)) for doc_id, cid, text, refs in rows])
                done += len(rows)
                if progress is not None:
                    progress(done, total)
            with conn:
                conn.executemany("INSERT OR REPLACE INTO docs_copy VALUES (?, ?, ?)", [(r.id, r.chunks, r.rev) for r in records])
            seconds = time.perf_counter() - started
            summary = {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "chunks": done, "documents": len(records),
                       "seconds": round(seconds, 2)}
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DROP TABLE chunks")
                conn.execute("DROP TABLE docs")
                conn.execute("ALTER TABLE chunks_copy RENAME TO chunks")
                conn.execute("ALTER TABLE docs_copy RENAME TO docs")
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("cursor", str(cursor)), ("anchor", anchor), ("epoch", epoch), ("built_at", summary["at"]),
                    ("built_chunks", str(done)), ("built_documents", str(len(records))), ("built_s", str(summary["seconds"])),
                ])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        finally:
            conn.close()
        self._epoch = (id(index), epoch)
        self._vocabulary_changed()
        return summary

    def _follow_changes(self, index: Any) -> tuple[int, int]:
        """Apply the change log's entries after the sidecar's position, up to the first change still under
        way. Returns (documents added or updated, removed)."""
        added = removed = 0
        while True:
            cursor = self.position()
            if cursor is None:  # no copy to follow from (a sidecar made again meanwhile): the next sync builds one
                return added, removed
            pending = index.changes.after(cursor, FOLLOW_BATCH)
            ready = []
            for change in pending:
                if not change.done and not index.changes.abandoned(change):
                    break  # a change under way: the state before it is kept until it ends
                ready.append(change)
            if not ready:
                return added, removed
            applied = self._apply(index, ready, cursor)
            if applied is None:
                continue  # another process moved the sidecar on meanwhile: start from where it is now
            added, removed = added + applied[0], removed + applied[1]
            if len(ready) < len(pending) or len(pending) < FOLLOW_BATCH:
                return added, removed

    def _apply(self, index: Any, changes: list[Any], cursor: int) -> tuple[int, int] | None:
        """Bring the documents these changes name in line with the index (each read as it is now, so that
        applying a change twice does no harm), and move the position past them, in one transaction.
        None when the position had moved (another process applied changes meanwhile)."""
        ops: dict[str, set[str]] = {}
        for change in changes:
            for doc_id in change.doc_ids:
                ops.setdefault(doc_id, set()).add(change.op)
        records = {d: r for d, r in index.get_documents(list(ops)).items() if r.status == "complete"}
        have = self.documents()
        # a rename changes a document's names, not its text: its rows stay
        renamed = {d for d, r in records.items() if ops[d] == {"paths"} and have.get(d, (-1, 0))[0] == r.chunks}
        reload = [r for d, r in records.items() if d not in renamed and have.get(d) != (r.chunks, r.rev)]
        rows: dict[str, list[tuple[str, str, str, int]]] = {r.id: [] for r in reload}
        for batch in index.chunk_texts(reload):
            for doc_id, cid, text, refs in batch:
                rows[doc_id].append((index_text(text), cid, doc_id, int(refs)))
        added = removed = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
                if row is None or int(row[0]) != cursor:
                    self._conn.rollback()
                    return None
                for doc_id in ops:
                    record = records.get(doc_id)
                    if record is None:  # removed, or not (or no longer) complete: its rows go
                        if doc_id in have:
                            self._delete_rows(doc_id)
                            self._conn.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
                            removed += 1
                    elif doc_id in rows:
                        self._delete_rows(doc_id)
                        self._conn.executemany("INSERT INTO chunks (text, id, doc_id, refs) VALUES (?, ?, ?, ?)", rows[doc_id])
                        self._conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (doc_id, record.chunks, record.rev))
                        added += 1
                    elif doc_id in renamed:
                        self._conn.execute("UPDATE docs SET rev = ? WHERE doc_id = ?", (record.rev, doc_id))
                self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("cursor", str(changes[-1].seq)), ("anchor", entry_fingerprint(changes[-1].meta))])
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
        if added or removed:
            self._vocabulary_changed()
        return added, removed

    def _vocabulary_changed(self) -> None:
        self._changes += 1
        self._common = None  # counted on demand until the vocabulary is read again
        self._df.clear()
        self._load_vocabulary()

    def _compare_all(self, index: Any, force: bool = False) -> tuple[int, int]:
        """Add the documents the index has and the sidecar lacks, drop those it no longer has, comparing
        every document (for an index without a change log).

        Follows ``index.complete_ids()``; when that set is unchanged a search costs nothing extra.
        Returns (documents added, documents removed).
        """
        complete = index.complete_ids()
        if not force and complete == self._synced_ids:
            return 0, 0
        wanted = {r.id: (r.chunks, r.rev) for r in index.list_documents()}
        have = self.documents()
        stale = [d for d, state in have.items() if wanted.get(d) != state]
        missing = [d for d in wanted if d not in have or d in stale]
        with self._lock, self._conn:
            for doc_id in stale:
                self._delete_rows(doc_id)
                self._conn.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
        for doc_id in missing:
            docs = index.get_chunks({"doc_id": doc_id})
            rows = [(index_text(d.page_content), d.id, doc_id, int(bool(d.metadata.get("in_references")))) for d in docs]
            with self._lock, self._conn:
                self._delete_rows(doc_id)  # another process may have added it meanwhile: never twice
                self._conn.executemany("INSERT INTO chunks (text, id, doc_id, refs) VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (doc_id, *wanted[doc_id]))
        if missing or stale or self._synced_ids is None:
            self._vocabulary_changed()
        self._synced_ids = complete
        return len(missing), len(stale)

    def _delete_rows(self, doc_id: str) -> None:
        """Delete a document's rows, found through the doc_id column's index (not by reading every row)."""
        self._conn.execute(
            "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks WHERE chunks MATCH ?) AND doc_id = ?",
            (f'doc_id : "{doc_id}"', doc_id),
        )

    # -- searching ---------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int,
        doc_ids: Sequence[str] | None = None,
        include_references: bool = False,
    ) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores (higher is better) for the query's terms, best first."""
        terms = query_terms(query)
        if not doc_ids:
            rare = set(self._rarest(list(dict.fromkeys(terms))))
            terms = [t for t in terms if t in rare]
        if not terms or k <= 0:
            return []
        match = "text : (" + " OR ".join(f'"{t}"' for t in terms) + ")"
        params: list[Any] = []
        extra = ""
        if doc_ids:
            # the column filter lets FTS5 visit only these papers' rows; the exact test guards it
            match = "doc_id : (" + " OR ".join(f'"{d}"' for d in doc_ids) + f") AND {match}"
            extra = f" AND doc_id IN ({','.join('?' * len(doc_ids))})"
            params.extend(doc_ids)
        if not include_references:
            match = f'{match} NOT refs : "1"'
        # bm25 weights per column (text, id, doc_id, refs): only the text counts
        sql = f"SELECT id, -bm25(chunks, 1.0, 0.0, 0.0, 0.0) AS score FROM chunks WHERE chunks MATCH ?{extra} ORDER BY score DESC LIMIT ?"
        with self._lock:
            return [(row[0], float(row[1])) for row in self._conn.execute(sql, [match, *params, k])]

    def _rarest(self, terms: list[str]) -> list[str]:
        """The rarest terms whose document frequencies add up to at most :data:`POSTINGS_BUDGET`."""
        counted = [(df, term) for term, df in zip(terms, self._frequencies(terms), strict=True) if df]
        kept, total = [], 0
        for df, term in sorted(counted):
            if total + df > POSTINGS_BUDGET:  # a query of common words only is left to the dense ranking
                break
            kept.append(term)
            total += df
        return kept

    def _frequencies(self, terms: list[str]) -> list[int]:
        """How many chunks contain each term (a stem, as :func:`query_terms` gives): from the vocabulary's
        frequent terms when it is loaded, otherwise counted (counting stops past what matters, so a common
        term costs no more than that)."""
        common = self._common
        out = []
        for term in terms:
            if common is not None and term in common:
                out.append(common[term])
                continue
            cap = VOCABULARY_MIN_DF if common is not None else POSTINGS_BUDGET + 1  # rarer than the map's terms
            if term not in self._df:
                with self._lock:
                    row = self._conn.execute(
                        "SELECT count(*) FROM (SELECT 1 FROM chunks WHERE chunks MATCH ? LIMIT ?)", (f'text : "{term}"', cap)
                    )
                    self._df[term] = int(row.fetchone()[0])
            out.append(self._df[term])
        return out

    def _load_vocabulary(self) -> None:
        """Read the document frequency of every term in at least :data:`VOCABULARY_MIN_DF` chunks (one pass
        over the index: seconds at a million chunks), in the background, on a connection of its own."""
        if self._loading.is_set():
            return
        self._loading.set()

        def load() -> None:
            try:
                while True:  # read again if the sidecar changed during the pass
                    changes = self._changes
                    conn = sqlite3.connect(str(self.path), timeout=30)
                    try:
                        conn.execute("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, chunks, 'row')")
                        rows = conn.execute("SELECT term, doc FROM temp.vocabulary WHERE doc >= ?", (VOCABULARY_MIN_DF,))
                        common = dict(rows.fetchall())
                    finally:
                        conn.close()
                    if changes == self._changes:
                        self._common = common
                        self._df.clear()
                        return
            except sqlite3.Error:  # the counts then stay on demand, as before
                pass
            finally:
                self._loading.clear()

        self._loader = threading.Thread(target=load, name="paperchat-vocabulary", daemon=True)
        self._loader.start()

    def vocabulary_loaded(self, timeout: float | None = None) -> bool:
        """Wait (up to ``timeout`` seconds) for the background reading of term frequencies; True when read."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self._common is not None

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._conn.close()
