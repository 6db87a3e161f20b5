"""Lexical (BM25) search over the chunks, as a SQLite FTS5 index derived from Chroma.

Local Chroma has no sparse/BM25 index, so paperchat keeps one beside it: a SQLite file with an FTS5
table of the chunk texts (Porter stemming, so "trained" finds "training"). Chroma stays the source of
truth: :meth:`LexicalIndex.sync` brings the sidecar in line with the documents Chroma holds (adding and
removing whole documents), so it is always safe to delete the file, and a Chroma server's collection
gets a local sidecar of its own.

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
#: Bump when the table layout changes: an older sidecar is dropped and rebuilt from Chroma.
SCHEMA_VERSION = "3"
#: Most postings (chunk, term) a whole-collection search ranks: ranking costs ~1.5 us per match.
POSTINGS_BUDGET = 20_000
#: Terms in at least this many chunks have their counts read from the index's vocabulary (in the
#: background after each change); rarer ones are counted when a search needs them, which is quick.
VOCABULARY_MIN_DF = 256


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
        with self._conn:
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:  # derived data: rebuilt from Chroma by sync()
                self._conn.execute("DROP TABLE IF EXISTS chunks")
                self._conn.execute("DROP TABLE IF EXISTS docs")
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(text, id UNINDEXED, doc_id, refs, "
                "tokenize='porter unicode61 remove_diacritics 2')"
            )
            self._conn.execute("CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, n_chunks INTEGER, rev INTEGER)")
        self._synced_ids: frozenset[str] | None = None  # None: the first search syncs
        self._common: dict[str, int] | None = None  # frequent (stemmed) terms and their chunk counts
        self._loading = threading.Event()
        self._loader: threading.Thread | None = None
        self._changes = 0
        self._stem_lock = threading.Lock()
        self._stemmer = sqlite3.connect(":memory:", check_same_thread=False)
        self._stemmer.execute("CREATE VIRTUAL TABLE s USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
        self._stemmer.execute("CREATE VIRTUAL TABLE si USING fts5vocab(s, 'instance')")
        self._df: dict[str, int] = {}  # chunks containing each term (up to the budget), whole-collection searches

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

    def sync(self, index: Any, force: bool = False) -> tuple[int, int]:
        """Add the documents Chroma has and the sidecar lacks, drop those Chroma no longer has.

        Follows ``index.complete_ids()``, which sees writes through the same index object at once and
        writes by other processes within a couple of seconds; when that set is unchanged a search costs
        nothing extra. Returns (documents added, documents removed).
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
            rows = [(d.page_content, d.id, doc_id, int(bool(d.metadata.get("in_references")))) for d in docs]
            with self._lock, self._conn:
                self._delete_rows(doc_id)  # another process may have added it meanwhile: never twice
                self._conn.executemany("INSERT INTO chunks (text, id, doc_id, refs) VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (doc_id, *wanted[doc_id]))
        if missing or stale or self._synced_ids is None:
            self._changes += 1
            self._common = None  # counted on demand until the vocabulary is read again
            self._df.clear()
            self._load_vocabulary()
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
            terms = self._rarest(terms)
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
        """How many chunks contain each term: from the vocabulary's frequent terms when it is loaded,
        otherwise counted (counting stops past what matters, so a common term costs no more than that)."""
        common = self._common
        stems = self._stems(terms) if common is not None else terms
        out = []
        for term, stem in zip(terms, stems, strict=True):
            if common is not None and stem in common:
                out.append(common[stem])
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

    def _stems(self, terms: list[str]) -> list[str]:
        """The terms as the index's tokenizer stores them (Porter stems), read back from an in-memory FTS5."""
        with self._stem_lock:
            self._stemmer.execute("INSERT INTO s (rowid, x) VALUES (1, ?)", (" ".join(terms),))
            found = dict(self._stemmer.execute("SELECT offset, term FROM si").fetchall())
            self._stemmer.execute("DELETE FROM s")
        return [found.get(i, t) for i, t in enumerate(terms)]

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
        """Close the SQLite connections."""
        with self._lock:
            self._conn.close()
        with self._stem_lock:
            self._stemmer.close()
