"""Lexical (BM25) search over the chunks, as a SQLite FTS5 index derived from Chroma.

Local Chroma has no sparse/BM25 index, so paperchat keeps one beside it: a SQLite file with an FTS5
table of the chunk texts (Porter stemming, so "trained" finds "training"). Chroma stays the source of
truth: :meth:`LexicalIndex.sync` brings the sidecar in line with the documents Chroma holds (adding and
removing whole documents), so it is always safe to delete the file, and a Chroma server's collection
gets a local sidecar of its own.

Example:
    >>> lex = LexicalIndex.for_index(index)  # doctest: +SKIP
    >>> lex.search("TITAN Xp GPU", k=5, doc_ids=["38cc55fbbcfee4cb"])  # doctest: +SKIP
    [('38cc55fbbcfee4cb:00031', 7.2), ...]
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Words that carry no evidence in a question about a paper.
QUERY_STOPWORDS = frozenset(
    """
    a about above after all also an and any are as at be been being between both but by can could did do
    does doing during each either etc for from had has have how however if in into is it its itself just
    may might more most much must no nor not of off on once only or other our out over own same should so
    some such than that the their them then there these they this those through to too under until up
    upon us very via was we were what when where whether which while who whom whose why will with within
    without would you your e g i.e eg ie
    """.split()
)
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)*")


def query_terms(text: str) -> list[str]:
    """Distinct search terms of a question, in order (stopwords and one-letter words dropped)."""
    seen: dict[str, None] = {}
    for raw in _WORD.findall(text):
        for part in re.split(r"[.\-]", raw) if not raw.replace(".", "").isdigit() else [raw]:
            low = part.lower()
            if len(low) > 1 and low not in QUERY_STOPWORDS:
                seen.setdefault(low, None)
    return list(seen)


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
        self._conn.executescript(
            """
            CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
                text, id UNINDEXED, doc_id UNINDEXED, refs UNINDEXED, tokenize='porter unicode61 remove_diacritics 2'
            );
            CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, n_chunks INTEGER);
            """
        )
        self._synced_count = -1

    @classmethod
    def for_index(cls, index: Any) -> LexicalIndex:
        """The sidecar of a :class:`~paperchat.vectorstore.index.PaperIndex` (one file per collection)."""
        settings = index.settings
        where = f"{settings.chroma_host}_{settings.chroma_port}_" if settings.uses_server else ""
        return cls(Path(settings.db) / f"lexical-{where}{settings.collection}.sqlite")

    # -- keeping in step with Chroma ---------------------------------------------------------------

    def documents(self) -> dict[str, int]:
        """Documents in the sidecar and their chunk counts."""
        with self._lock:
            return dict(self._conn.execute("SELECT doc_id, n_chunks FROM docs").fetchall())

    def sync(self, index: Any, force: bool = False) -> tuple[int, int]:
        """Add the documents Chroma has and the sidecar lacks, drop those Chroma no longer has.

        Cheap when nothing changed (one count). Returns (documents added, documents removed).
        """
        count = index.count_chunks()
        if not force and count == self._synced_count:
            return 0, 0
        wanted = {r.id: r.chunks for r in index.list_documents()}
        have = self.documents()
        stale = [d for d, n in have.items() if d not in wanted or wanted[d] != n]
        missing = [d for d in wanted if d not in have or d in stale]
        with self._lock, self._conn:
            for doc_id in stale:
                self._conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                self._conn.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
        for doc_id in missing:
            docs = index.get_chunks({"doc_id": doc_id})
            rows = [(d.page_content, d.metadata["id"], doc_id, int(bool(d.metadata.get("in_references")))) for d in docs]
            with self._lock, self._conn:
                self._conn.executemany("INSERT INTO chunks (text, id, doc_id, refs) VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?)", (doc_id, len(rows)))
        self._synced_count = count
        return len(missing), len(stale)

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
        if not terms or k <= 0:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        sql = "SELECT id, -bm25(chunks) AS score FROM chunks WHERE chunks MATCH ?"
        params: list[Any] = [match]
        if doc_ids:
            sql += f" AND doc_id IN ({','.join('?' * len(doc_ids))})"
            params.extend(doc_ids)
        if not include_references:
            sql += " AND refs = 0"
        sql += " ORDER BY rank LIMIT ?"
        params.append(k)
        with self._lock:
            return [(row[0], float(row[1])) for row in self._conn.execute(sql, params)]

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._conn.close()
