"""The Chroma index of paper chunks, as a LangChain ``VectorStore``: open (embedded folder or server), write
papers and texts, search, list, delete.

Four Chroma collections per paperchat collection:

* ``<name>``: one record per embedded chunk (text, embedding, metadata), cosine space.
* ``<name>__references``: the chunks of reference lists, text and metadata without embeddings. They are
  excluded from answers by default and found by keyword when asked for; not embedding them saves a
  quarter of the indexing time of a typical paper (``bench/ingest.py``).
* ``<name>__documents``: one record per document (file, title, pages, chunks, sha256, status). A paper is
  written ``partial`` first and marked ``complete`` after its last chunk, so an interrupted run is
  detected and redone, and queries never see a half-written document.
* ``<name>__changes``: the change log, one entry per change to a document, in order
  (:mod:`paperchat.vectorstore.changes`), which clients follow to keep their keyword sidecar current.

On a Chroma server, ``<name>__lease`` holds the writers' lease (:mod:`paperchat.vectorstore.lease`).

Two kinds of documents live side by side. Papers indexed by ``paperchat index`` (parsed, cleaned, chunked
here); and texts added through the ``VectorStore`` API (``add_texts``/``add_documents``), grouped into one
document per ``source`` (LangChain loaders set it; a text without one is a document of its own). Both are
found by dense and keyword search, listed by ``paperchat list`` and removed by ``paperchat delete``. Texts
added through the API come back with exactly the metadata they were given.

The chunk collection records which embedder (and dimension) and which chunking built it; opening it with
another embedder raises :class:`~paperchat.vectorstore.errors.EmbedderMismatchError`. Every call to Chroma
goes through :mod:`paperchat.vectorstore.guard`: a server that went away is one clear
:class:`~paperchat.vectorstore.errors.IndexUnavailableError`, and an embedded store that another process
wrote to is reopened.

Example:
    >>> from paperchat.vectorstore.index import PaperIndex
    >>> index = PaperIndex.open(db="/tmp/papers-db")
    >>> [d.file for d in index.list_documents()]
    []
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from paperchat.vectorstore.changes import CHANGES_SUFFIX, ChangeLog
from paperchat.vectorstore.chunk import CHUNKER_VERSION
from paperchat.vectorstore.embed import (
    VectorCache,
    embed_question,
    embed_texts,
    embedder_dimension,
    embedder_name,
    make_embedder,
)
from paperchat.vectorstore.errors import (
    EmbedderMismatchError,
    EmptyIndexError,
    IndexUnavailableError,
    PaperchatError,
)
from paperchat.vectorstore.guard import GuardedCollection, SharedExclusiveLock
from paperchat.vectorstore.lease import LEASE_SUFFIX
from paperchat.vectorstore.settings import Settings
from paperchat.vectorstore.types import Chunk, DocumentRecord, ParsedDocument, page_ranges, parse_page_ranges

_DOCS_SUFFIX = "__documents"
#: Reference-list chunks: text and metadata only, searched by keyword (BM25), never embedded.
_REFS_SUFFIX = "__references"
_META_EMBEDDER = "paperchat_embedder"
_META_DIMENSION = "paperchat_dimension"
_META_CHUNKING = "paperchat_chunking"
#: Metadata key of chunks added through the VectorStore API: the keys paperchat added, hidden on reading.
HIDDEN_KEYS = "pc_hide"
#: ``kind`` of a document made of texts added through the VectorStore API.
API_KIND = "langchain"
#: Seconds for which the set of complete documents is reused before Chroma is asked again.
COMPLETE_IDS_MAX_AGE_S = 2.0
#: Seconds between two reopenings of an embedded store that another process is writing to.
REOPEN_INTERVAL_S = 10.0
#: Seconds for which document records (file names, titles) are reused when nothing else changed.
RECORDS_MAX_AGE_S = 10.0
#: Vectors of recent questions and sentences kept per index (about 30 MB).
VECTOR_CACHE_SIZE = 20_000
#: Searches within papers of at most this many chunks in all score every chunk exactly (see ``nearest``).
EXACT_SEARCH_MAX = 20_000


def embedded_chunks(chunks: Sequence[Chunk]) -> list[Chunk]:
    """The chunks that get an embedding: all but those of reference lists (searched by keyword only)."""
    return [c for c in chunks if not c.in_references]


def chunking_signature(settings: Settings) -> str:
    """What the chunks depend on besides the embedder: chunker version, size, overlap."""
    return f"{CHUNKER_VERSION}:{settings.chunk_tokens}/{settings.chunk_overlap}"


def index_unavailable_message(settings: Settings, exc: BaseException) -> str:
    """What to tell the user when the store or server cannot be used."""
    if settings.uses_server:
        return (
            f"Cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} ({type(exc).__name__}). "
            "Start it (chroma run --path DIR --port N), or unset PAPERCHAT_CHROMA_HOST to use a local folder."
        )
    return f"Cannot open the index folder {settings.db} ({exc}). Check that it is writable (--db DIR or PAPERCHAT_DB)."


def empty_index_message(settings: Settings) -> str:
    """What to tell the user when there are no papers where the settings point."""
    where = (
        f"--chroma-host {settings.chroma_host} --chroma-port {settings.chroma_port}"
        if settings.uses_server
        else f"--db {settings.db}"
    )
    return (
        f"No papers are indexed at {settings.location()}. Check the path and collection name, or build the "
        f"index: paperchat index PATH... {where} --collection {settings.collection}"
    )


def make_client(settings: Settings, create: bool = True) -> Any:
    """A Chroma client: ``HttpClient`` when a host is configured, else ``PersistentClient`` on ``settings.db``.

    With ``create=False`` a missing folder is an :class:`EmptyIndexError` instead of a new, empty store.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.uses_server:
            return chromadb.HttpClient(
                host=settings.chroma_host or "localhost", port=settings.chroma_port, settings=chroma_settings
            )
        db = Path(settings.db)
        if db.exists() and not db.is_dir():
            raise IndexUnavailableError(f"The index folder {db} is a file, not a folder. Use another --db DIR.")
        if not create and not db.is_dir():
            raise EmptyIndexError(empty_index_message(settings))
        db.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(db), settings=chroma_settings)
    except PaperchatError:
        raise
    except Exception as exc:  # chromadb raises plain ValueError/ConnectError here
        raise IndexUnavailableError(index_unavailable_message(settings, exc)) from exc


def drop_collection(client: Any, name: str) -> None:
    """Delete a paperchat collection, its document records and change log (``--rebuild``); absent ones are
    fine. The lease stays: the writer that rebuilds holds it."""
    existing = {c.name for c in client.list_collections()}
    for coll in (name, name + _DOCS_SUFFIX, name + _REFS_SUFFIX, name + CHANGES_SUFFIX):
        if coll in existing:
            client.delete_collection(coll)


@dataclass(slots=True)
class SearchHit:
    """One retrieved chunk with its cosine similarity to the query (and its document's id)."""

    document: Document
    score: float
    doc_id: str = ""
    embedding: np.ndarray | None = None


def _records_from_get(result: dict[str, Any]) -> list[DocumentRecord]:
    records = []
    for doc_id, meta in zip(result["ids"], result["metadatas"] or [], strict=False):
        meta = meta or {}
        records.append(
            DocumentRecord(
                id=doc_id,
                file=str(meta.get("file", "")),
                title=str(meta.get("title", "")),
                pages=int(meta.get("pages", 0)),
                chunks=int(meta.get("chunks", 0)),
                sha256=str(meta.get("sha256", "")),
                doi=(str(meta["doi"]) if meta.get("doi") else None),
                path=str(meta.get("path", "")),
                paths=[p for p in str(meta.get("paths", "") or meta.get("path", "")).split("\n") if p],
                kind=str(meta.get("kind", "")),
                status=str(meta.get("status", "complete")),
                rev=int(meta.get("rev", 0) or 0),
                ocr_pages=parse_page_ranges(str(meta.get("ocr_pages", ""))),
            )
        )
    return records


def _api_doc_id(meta: dict[str, Any], chunk_id: str) -> str:
    """The document a text added through the API belongs to: its ``doc_id``, else its ``source``, else itself."""
    if meta.get("doc_id"):
        return str(meta["doc_id"])
    key = f"source:{meta['source']}" if meta.get("source") else f"text:{chunk_id}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _check_metadata(meta: dict[str, Any], position: int) -> dict[str, Any]:
    """Metadata Chroma can store (str, int, float, bool; None values dropped), or a clear error."""
    clean: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None:
            continue
        if key == HIDDEN_KEYS:
            raise PaperchatError(f"Metadata key '{HIDDEN_KEYS}' of text {position} is reserved by paperchat; rename it.")
        if not isinstance(value, (str, int, float, bool)):
            raise PaperchatError(
                f"Metadata '{key}' of text {position} is a {type(value).__name__}: Chroma stores only strings, "
                "numbers and booleans. Convert it (e.g. json.dumps) or drop it."
            )
        clean[str(key)] = value
    return clean


class PaperIndex(VectorStore):
    """A paper collection in Chroma, as a LangChain ``VectorStore``: chunks with embeddings, plus a record per
    document. Open it with :meth:`open`.

    Args:
        settings: Where the index lives (embedded folder or Chroma server) and which embedder builds it.
        embedding: Any LangChain ``Embeddings`` to use instead of the one the settings name.
        client: An existing Chroma client.
        create: Create the folder and collections when missing (``False``: a missing index is an
            :class:`~paperchat.vectorstore.errors.EmptyIndexError`).

    Example:
        >>> index = PaperIndex.open(db="/tmp/db")  # doctest: +SKIP
        >>> index.add_texts(["Models were trained on a TITAN Xp GPU."], [{"source": "notes.txt"}])  # doctest: +SKIP
        >>> index.similarity_search("Which GPU?", k=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings | None = None,
        embedding: Embeddings | None = None,
        client: Any | None = None,
        *,
        create: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self.embedder: Any = embedding if embedding is not None else make_embedder(self.settings)
        self._create = create
        self._store_lock = SharedExclusiveLock()
        self._connect(client)
        self._chunks = GuardedCollection(self, "chunks")
        self._docs = GuardedCollection(self, "docs")
        self._refs = GuardedCollection(self, "refs")
        #: The ordered log of changes to documents (written with every change, read by followers).
        self.changes = ChangeLog(GuardedCollection(self, "changes"), self.settings,
                                 GuardedCollection(self, "lease") if self.settings.uses_server else None)
        #: Changes with every write through this object, so that derived data (the BM25 sidecar) can tell.
        self.generation = 0
        self._complete: tuple[int, float, frozenset[str]] | None = None
        self._records: tuple[int, float, frozenset[str], dict[str, DocumentRecord]] | None = None
        self._reopened_at = time.monotonic()
        self._stale = False  # another process changed the store; reopen when the interval allows
        #: Recent question and sentence vectors, shared by the retriever and the extractive answerer.
        self.vector_cache = VectorCache(self.embedder, VECTOR_CACHE_SIZE)

    @classmethod
    def open(
        cls,
        db: str | Path | Settings | None = None,
        collection: str | None = None,
        *,
        embedding: Embeddings | None = None,
        settings: Settings | None = None,
        rebuild: bool = False,
        create: bool = True,
        client: Any | None = None,
    ) -> PaperIndex:
        """Open (creating if needed) an index: a folder and collection, or what the settings describe.

        Args:
            db: The index folder (default ``PAPERCHAT_DB`` or ``.paperchat``).
            collection: The collection name (default ``PAPERCHAT_COLLECTION`` or ``papers``).
            embedding: Any LangChain ``Embeddings`` (default: the settings' embedder, MiniLM offline).
            settings: Everything else (a Chroma server, chunking, limits); environment variables fill the rest.
            rebuild: Empty the collection first.
            create: Create the index when it does not exist (``False``: that is an error).
            client: An existing Chroma client.
        """
        if isinstance(db, Settings):
            settings, db = db, None
        settings = settings or Settings()
        updates = {key: value for key, value in (("db", db), ("collection", collection)) if value is not None}
        if updates:
            settings = Settings.model_validate({**settings.model_dump(), **updates})
        if rebuild:
            client = client or make_client(settings)
            drop_collection(client, settings.collection)
        return cls(settings, embedding=embedding, client=client, create=create)

    def _connect(self, client: Any | None = None) -> None:
        """Open the client and the three collections (checking the embedder that built them)."""
        settings = self.settings
        self.client = client if client is not None else make_client(settings, create=self._create)
        name = settings.collection
        try:
            existing = {c.name for c in self.client.list_collections()}
        except Exception as exc:
            raise IndexUnavailableError(index_unavailable_message(settings, exc)) from exc
        if not self._create and name not in existing:
            raise EmptyIndexError(empty_index_message(settings))
        self._check_embedder(name, existing)
        chunks = self.client.get_or_create_collection(
            name,
            embedding_function=None,
            metadata={
                _META_EMBEDDER: embedder_name(self.embedder),
                _META_DIMENSION: int(embedder_dimension(self.embedder)),
                _META_CHUNKING: chunking_signature(settings),
            },
            configuration={"hnsw": {"space": "cosine"}},
        )
        self.collections = {
            "chunks": chunks,
            "docs": self.client.get_or_create_collection(name + _DOCS_SUFFIX, embedding_function=None),
            "refs": self.client.get_or_create_collection(name + _REFS_SUFFIX, embedding_function=None),
            "changes": self.client.get_or_create_collection(name + CHANGES_SUFFIX, embedding_function=None),
        }
        if settings.uses_server:
            self.collections["lease"] = self.client.get_or_create_collection(name + LEASE_SUFFIX, embedding_function=None)

    def reopen(self) -> bool:
        """Reopen an embedded store, so that it sees what other processes wrote since it was opened.

        A Chroma folder opened by one process does not load vectors that another process adds later, and
        keeps finding those another process deleted. Waits for the calls in flight. Returns False for a
        Chroma server, which needs no reopening.
        """
        if self.settings.uses_server:
            return False
        with self._store_lock.exclusive():
            try:
                self.client.close()
            except Exception:  # noqa: BLE001 - an older client without close(): a new one is opened anyway
                pass
            self._connect()
            self._reopened_at = time.monotonic()
            self._complete = None
            self._records = None
            self._stale = False
        return True

    def _reopen_when_due(self) -> None:
        """Reopen a store another process changed, at most every :data:`REOPEN_INTERVAL_S` seconds; until
        then the change stays noted, so it is not forgotten."""
        if self._stale and time.monotonic() - self._reopened_at > REOPEN_INTERVAL_S:
            self.reopen()

    # -- identity ------------------------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        """The embedder of this index (LangChain's ``VectorStore.embeddings``)."""
        return self.embedder

    def _check_embedder(self, name: str, existing: set[str]) -> None:
        if name not in existing:
            return
        meta = self.client.get_collection(name, embedding_function=None).metadata or {}
        built_by, dim = meta.get(_META_EMBEDDER), meta.get(_META_DIMENSION)
        if built_by is None:
            raise EmbedderMismatchError(
                f"The collection '{name}' at {self.settings.location()} was not built by paperchat. "
                f"Use another collection (--collection NAME)."
            )
        mine = embedder_name(self.embedder)
        if built_by != mine or (dim is not None and int(dim) != int(embedder_dimension(self.embedder))):
            raise EmbedderMismatchError(
                f"The collection '{name}' was built with the embedder '{built_by}' ({dim} dimensions), "
                f"but the configured embedder is '{mine}'. Its vectors cannot be compared. "
                f"Set PAPERCHAT_EMBEDDER={built_by} to use it, or rebuild it with the new embedder: "
                f"paperchat index PATH... --collection {name} --rebuild"
            )

    @property
    def chunking(self) -> str:
        """The chunking signature recorded by the collection."""
        return str((self._chunks.metadata or {}).get(_META_CHUNKING, ""))

    def check_chunking(self) -> None:
        """Refuse to add documents chunked differently from those already in the collection."""
        current = chunking_signature(self.settings)
        if self.chunking and self.chunking != current and self.count_chunks() > 0:
            raise EmbedderMismatchError(
                f"The collection '{self.settings.collection}' was chunked as {self.chunking}, the settings "
                f"say {current}. Mixing them would make results inconsistent. Rebuild it: "
                f"paperchat index PATH... --collection {self.settings.collection} --rebuild"
            )

    def write_lock(self) -> Any:
        """The write lock of this index (re-entrant within a process; see :mod:`paperchat.vectorstore.lock`)."""
        from paperchat.vectorstore.lock import writer_lock

        return writer_lock(self.settings, wait_s=self.settings.write_wait_s)

    # -- documents -----------------------------------------------------------------------------

    def list_documents(self, include_partial: bool = False) -> list[DocumentRecord]:
        """Every indexed document, sorted by file name."""
        records = _records_from_get(self._docs.get(include=["metadatas"]))
        if not include_partial:
            records = [r for r in records if r.status == "complete"]
        return sorted(records, key=lambda r: (r.file.lower(), r.id))

    def complete_ids(self) -> frozenset[str]:
        """Ids of the complete documents, as of at most :data:`COMPLETE_IDS_MAX_AGE_S` ago.

        Writes through this object are seen at once; writes by other processes (``paperchat index`` or
        ``delete`` while the app runs) within that time, and then the store is reopened (at most every
        :data:`REOPEN_INTERVAL_S`) so that their vectors are searched and deleted ones no longer found.
        Queries use it to leave out the chunks of a document that is still being written, or was deleted.
        """
        self._reopen_when_due()
        now = time.monotonic()
        cached = self._complete
        if cached is None or cached[0] != self.generation or now - cached[1] > COMPLETE_IDS_MAX_AGE_S:
            ids = frozenset(self._docs.get(where={"status": "complete"}, include=[])["ids"])
            if cached is not None and cached[0] == self.generation and ids != cached[2] and not self.settings.uses_server:
                self._stale = True  # written by another process
                self._reopen_when_due()
            cached = self._complete = (self.generation, now, ids)
        return cached[2]

    def records(self) -> dict[str, DocumentRecord]:
        """The complete documents' records by id: current file names and titles for citations. Read again
        when the set of documents changes, and at least every :data:`RECORDS_MAX_AGE_S` (renames)."""
        complete = self.complete_ids()
        now = time.monotonic()
        cached = self._records
        if cached is None or cached[0] != self.generation or cached[2] != complete or now - cached[1] > RECORDS_MAX_AGE_S:
            by_id = {r.id: r for r in self.list_documents()}
            cached = self._records = (self.generation, now, complete, by_id)
        return cached[3]

    def get_document(self, doc_id: str) -> DocumentRecord | None:
        """The record of one document by its id, or ``None``."""
        records = _records_from_get(self._docs.get(ids=[doc_id], include=["metadatas"]))
        return records[0] if records else None

    def get_documents(self, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        """The records of these documents (complete or not) by id; unknown ids are left out."""
        if not doc_ids:
            return {}
        return {r.id: r for r in _records_from_get(self._docs.get(ids=list(doc_ids), include=["metadatas"]))}

    def resolve(self, ref: str) -> DocumentRecord:
        """Find one complete document by id (or id prefix), file name, path or exact title."""
        ref = str(ref).strip()
        exact = self.get_document(ref) if ref else None
        if exact is not None and exact.status == "complete":
            return exact  # the common case (the app and batch extraction pass ids) reads one record
        records = self.list_documents()
        name = Path(ref).name
        for match in (
            lambda r: r.id == ref,
            lambda r: r.file == ref or ref in r.paths or any(Path(p).name == name for p in r.paths) or r.file == name,
            lambda r: r.id.startswith(ref) and len(ref) >= 4,
            lambda r: r.title.lower() == ref.lower(),
        ):
            found = [r for r in records if match(r)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = ", ".join(f"{r.id} ({r.file})" for r in found[:5])
                raise PaperchatError(f"'{ref}' matches several documents: {names}. Use the document id.")
        raise PaperchatError(f"No indexed document matches '{ref}'. See the ids and files with: paperchat list")

    def resolve_papers(self, refs: Iterable[str] | str | None) -> list[str]:
        """Document ids for papers named by id, id prefix, file name or title (a string is one paper)."""
        if refs is None:
            return []
        if isinstance(refs, str):
            refs = [refs]
        return list(dict.fromkeys(self.resolve(ref).id for ref in refs))

    def count_chunks(self) -> int:
        """Number of chunks, embedded ones and reference-list ones."""
        return int(self._chunks.count()) + int(self._refs.count())

    def is_empty(self) -> bool:
        """True when no document is complete (nothing to answer from)."""
        return not self.complete_ids()

    def write_document(self, parsed: ParsedDocument, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Store a paper's chunks and mark it complete (partial until the last chunk is written).

        ``embeddings`` are those of the chunks outside the references (:func:`embedded_chunks`), in order;
        reference-list chunks are stored for keyword search without one.
        """
        meta = {
            "file": parsed.file,
            "path": parsed.path,
            "paths": parsed.path,
            "title": parsed.title,
            "pages": parsed.n_pages,
            "chunks": len(chunks),
            "sha256": parsed.sha256,
            "kind": parsed.kind,
            "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "partial",
            "rev": time.time_ns(),
        }
        if parsed.doi:
            meta["doi"] = parsed.doi
        if parsed.ocr_pages:
            meta["ocr_pages"], meta["ocr_engine"] = page_ranges(parsed.ocr_pages), parsed.ocr_engine
        body = embedded_chunks(chunks)
        if len(body) != len(embeddings):
            raise ValueError(f"{len(body)} chunks to embed but {len(embeddings)} embeddings")
        refs = [c for c in chunks if c.in_references]
        batch = self._max_batch()
        with self.changes.record("write", [parsed.doc_id]):
            self._docs.upsert(ids=[parsed.doc_id], metadatas=[meta], embeddings=[[1.0]])
            # Chunks left by an interrupted earlier run of this same document go first.
            self._chunks.delete(where={"doc_id": parsed.doc_id})
            self._refs.delete(where={"doc_id": parsed.doc_id})
            for collection, part_chunks, part_vectors in ((self._chunks, body, embeddings), (self._refs, refs, None)):
                for start in range(0, len(part_chunks), batch):
                    part = part_chunks[start : start + batch]
                    collection.upsert(
                        ids=[c.id for c in part],
                        # reference-list chunks are not embedded: Chroma wants a vector, a constant one will do
                        embeddings=part_vectors[start : start + batch] if part_vectors is not None else [[1.0]] * len(part),
                        documents=[c.text for c in part],
                        metadatas=[self._chunk_metadata(parsed, c) for c in part],
                    )
            self._docs.update(ids=[parsed.doc_id], metadatas=[{"status": "complete"}])
        self.generation += 1

    def _max_batch(self) -> int:
        try:
            return max(1, min(1000, int(self.client.get_max_batch_size())))
        except Exception:  # noqa: BLE001 - older clients
            return 1000

    @staticmethod
    def _chunk_metadata(parsed: ParsedDocument, chunk: Chunk) -> dict[str, Any]:
        return {
            "doc_id": chunk.doc_id,
            "file": parsed.file,
            "title": parsed.title,
            "page": chunk.page_start,
            "page_end": chunk.page_end,
            "section": chunk.section,
            "in_references": chunk.in_references,
            "chunk": chunk.index,
            "tokens": chunk.n_tokens,
        }

    def delete_document(self, doc_id: str) -> int:
        """Remove a document and its chunks; returns the number of chunks removed."""
        removed = 0
        with self.changes.record("remove", [doc_id]):
            # not complete from here on: a reader never sees a document with some of its chunks gone
            self._docs.update(ids=[doc_id], metadatas=[{"status": "partial"}])
            for collection in (self._chunks, self._refs):
                removed += len(collection.get(where={"doc_id": doc_id}, include=[])["ids"])
                collection.delete(where={"doc_id": doc_id})
            self._docs.delete(ids=[doc_id])
        self.generation += 1
        return removed

    def set_paths(self, doc_id: str, paths: Sequence[str]) -> None:
        """Record where a known document lives now (renamed, moved or copied files with the same content):
        the first existing path names it in listings and citations."""
        paths = list(dict.fromkeys(paths))
        with self.changes.record("paths", [doc_id]):
            self._docs.update(
                ids=[doc_id], metadatas=[{"path": paths[0], "paths": "\n".join(paths), "file": Path(paths[0]).name,
                                          "rev": time.time_ns()}]
            )
        self.generation += 1

    # -- from Chroma records to LangChain documents --------------------------------------------

    def _document(self, chunk_id: str, text: str, meta: dict[str, Any] | None, records: dict[str, DocumentRecord]) -> Document:
        """The one conversion from a Chroma record to a ``Document`` (``id`` = the chunk id).

        A text added through the API gets back exactly its metadata. A paper's chunk gets its page, section
        and position, with the file, title and ``source`` (its path) of the document's current record.
        """
        meta = dict(meta or {})
        hidden = meta.pop(HIDDEN_KEYS, None)
        if hidden is not None:
            for key in str(hidden).split(","):
                meta.pop(key, None)
            return Document(id=chunk_id, page_content=text, metadata=meta)
        record = records.get(str(meta.get("doc_id", "")))
        if record is not None:
            meta["file"], meta["title"] = record.file or meta.get("file", ""), record.title or meta.get("title", "")
            meta["source"] = record.path or meta.get("file", "")
        else:
            meta.setdefault("source", meta.get("file", ""))
        return Document(id=chunk_id, page_content=text, metadata=meta)

    def _documents(self, got: dict[str, Any]) -> list[tuple[str, Document]]:
        """(doc_id, Document) for every record of a ``get`` that still has its text (a stale embedded
        reader can still list records another process deleted: those are skipped and the store reopened)."""
        records = self.records()
        out = []
        for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
            if text is None:
                self._stale = True
                continue
            out.append((str((meta or {}).get("doc_id", "")), self._document(cid, text, meta, records)))
        return out

    # -- searching -----------------------------------------------------------------------------

    def where(
        self,
        papers: Iterable[str] | None = None,
        sections: Iterable[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """A Chroma ``where`` filter for paper ids and sections (and a caller's own filter), for the
        embedded chunks. Reference-list chunks are not in the embedded collection, so the references switch
        needs no clause: a filter that matched every chunk would make Chroma check the metadata of the whole
        collection on every query."""
        clauses: list[dict[str, Any]] = []
        paper_ids = list(papers or [])
        if paper_ids:
            clauses.append({"doc_id": {"$in": paper_ids}} if len(paper_ids) > 1 else {"doc_id": paper_ids[0]})
        section_list = list(sections or [])
        if section_list:
            clauses.append({"section": {"$in": section_list}})
        if extra:
            clauses.append(extra)
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def dense_search(
        self, query_vectors: np.ndarray, k: int, where: dict[str, Any] | None = None, with_embeddings: bool = False
    ) -> list[list[SearchHit]]:
        """Nearest embedded chunks of the whole collection (Chroma's HNSW index) for each query vector."""
        if len(query_vectors) == 0:
            return []
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if with_embeddings else [])
        result = self._chunks.query(
            query_embeddings=np.asarray(query_vectors, dtype=np.float32), n_results=k, where=where, include=include
        )
        records = self.records()
        out = []
        for row, (ids, texts, metas, dists) in enumerate(
            zip(result["ids"], result["documents"], result["metadatas"], result["distances"], strict=True)
        ):
            vectors = result["embeddings"][row] if with_embeddings else [None] * len(ids)
            hits = []
            for cid, text, meta, dist, vector in zip(ids, texts, metas, dists, vectors, strict=True):
                if text is None:  # deleted by another process since this store was opened
                    self._stale = True
                    continue
                doc = self._document(cid, text, meta, records)
                hits.append(SearchHit(doc, 1.0 - float(dist), str((meta or {}).get("doc_id", "")),
                                      None if vector is None else np.asarray(vector, dtype=np.float32)))
            out.append(hits)
        return out

    def _paper_chunk_ids(self, records: list[DocumentRecord]) -> tuple[list[str], list[str]]:
        """Chunk ids of papers (they follow from the records) and the ids of API documents (read by filter)."""
        ids = [f"{r.id}:{i:05d}" for r in records if r.kind != API_KIND for i in range(r.chunks)]
        return ids, [r.id for r in records if r.kind == API_KIND]

    def nearest(
        self,
        query_vectors: np.ndarray,
        k: int,
        papers: Sequence[str] | None = None,
        sections: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
        with_embeddings: bool = False,
    ) -> list[list[SearchHit]]:
        """Nearest embedded chunks for each query vector, within papers and sections if given.

        Within papers of up to :data:`EXACT_SEARCH_MAX` chunks in all, every chunk is scored exactly:
        their vectors are read by id, which is faster than Chroma's filtered approximate search at any
        collection size and never misses a chunk. Otherwise Chroma's HNSW index answers, with a filter.
        """
        vectors = np.asarray(query_vectors, dtype=np.float32)
        if len(vectors) == 0:
            return []
        records = _records_from_get(self._docs.get(ids=list(papers), include=["metadatas"])) if papers else []
        if not papers or where or sum(r.chunks for r in records) > EXACT_SEARCH_MAX:
            return self.dense_search(vectors, k, self.where(papers, sections, where), with_embeddings)
        ids, api_docs = self._paper_chunk_ids(records)
        include = ["embeddings", "metadatas"] if sections else ["embeddings"]
        parts = [self._chunks.get(ids=ids, include=include)] if ids else []
        if api_docs:
            parts.append(self._chunks.get(where=self.where(api_docs), include=include))
        found = [cid for part in parts for cid in part["ids"]]
        matrix_rows = [emb for part in parts for emb in part["embeddings"]]
        if sections:
            wanted = set(sections)
            metas = [m for part in parts for m in part["metadatas"]]
            keep = [i for i, m in enumerate(metas) if (m or {}).get("section") in wanted]
        else:
            keep = list(range(len(found)))
        if not keep:
            return [[] for _ in vectors]
        matrix = np.asarray(matrix_rows, dtype=np.float32)[keep]
        found = [found[i] for i in keep]
        scores = vectors @ matrix.T
        top = [np.argsort(-row, kind="stable")[:k] for row in scores]
        wanted_ids = list(dict.fromkeys(found[j] for row in top for j in row))
        by_id = dict((doc.id, (doc_id, doc)) for doc_id, doc in self._documents(
            self._chunks.get(ids=wanted_ids, include=["documents", "metadatas"])))
        return [
            [
                SearchHit(by_id[found[j]][1], float(row_scores[j]), by_id[found[j]][0],
                          matrix[j] if with_embeddings else None)
                for j in row
                if found[j] in by_id
            ]
            for row, row_scores in zip(top, scores, strict=True)
        ]

    def search(
        self,
        query: str,
        k: int = 6,
        papers: Iterable[str] | None = None,
        sections: Iterable[str] | None = None,
    ) -> list[SearchHit]:
        """Dense search for one query among complete documents, optionally within papers and sections."""
        hits = self.nearest(np.asarray([embed_question(self.embedder, query)]), k, list(papers or []), list(sections or []))[0]
        complete = self.complete_ids()
        return [h for h in hits if h.doc_id in complete]

    def get_chunks(self, where: dict[str, Any] | None = None, include_references: bool = True) -> list[Document]:
        """All chunks matching a filter (reference-list chunks too, unless excluded), as LangChain documents
        in chunk-id order."""
        docs = []
        for collection in (self._chunks, self._refs) if include_references else (self._chunks,):
            docs += [doc for _, doc in self._documents(collection.get(where=where, include=["documents", "metadatas"]))]
        return sorted(docs, key=lambda d: str(d.id))

    def chunk_texts(
        self, records: Sequence[DocumentRecord], batch: int = 2000, workers: int = 1
    ) -> Iterator[list[tuple[str, str, str, bool]]]:
        """The chunks of these documents as batches of (doc_id, chunk_id, text, in_references): a paper's
        chunks are read by id (their ids follow from its record), first from the embedded chunks and the
        rest from the reference lists; texts added through the API are read by document. Only texts, no
        vectors or metadata, so that a client copies a large collection quickly; with ``workers`` > 1 that
        many batches are read at once, ahead of the caller (a Chroma server answers them in parallel)."""
        papers = [r for r in records if r.kind != API_KIND]
        ids = [f"{r.id}:{i:05d}" for r in papers for i in range(r.chunks)]

        def read(wanted: list[str]) -> list[tuple[str, str, str, bool]]:
            got = self._chunks.get(ids=wanted, include=["documents"])
            rows = [(cid.rsplit(":", 1)[0], cid, text, False) for cid, text in zip(got["ids"], got["documents"], strict=True)
                    if text is not None]
            missing = sorted(set(wanted) - set(got["ids"]))
            if missing:
                refs = self._refs.get(ids=missing, include=["documents"])
                rows += [(cid.rsplit(":", 1)[0], cid, text, True) for cid, text in zip(refs["ids"], refs["documents"], strict=True)
                         if text is not None]
            return rows

        batches = [ids[start : start + batch] for start in range(0, len(ids), batch)]
        if workers <= 1:
            yield from (read(b) for b in batches)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="paperchat-copy") as pool:
                ahead: list[Any] = []  # at most workers + 1 batches read ahead: memory stays bounded
                for b in batches:
                    ahead.append(pool.submit(read, b))
                    if len(ahead) > workers:
                        yield ahead.pop(0).result()
                for future in ahead:
                    yield future.result()
        for record in records:
            if record.kind == API_KIND:
                got = self._chunks.get(where={"doc_id": record.id}, include=["documents"])
                yield [(record.id, cid, text, False) for cid, text in zip(got["ids"], got["documents"], strict=True)
                       if text is not None]

    def get_chunks_with_embeddings(self, ids: Sequence[str]) -> list[tuple[Document, np.ndarray]]:
        """Chunks by id, each with its stored embedding (reference-list chunks: zeros)."""
        if not ids:
            return []
        got = self._chunks.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        vectors = dict(zip(got["ids"], got["embeddings"], strict=True))
        out = [(doc, np.asarray(vectors[doc.id], dtype=np.float32)) for _, doc in self._documents(got)]
        have = set(got["ids"])
        missing = [i for i in ids if i not in have]
        if missing:  # reference-list chunks have no embedding: zero similarity
            zeros = np.zeros(int(embedder_dimension(self.embedder)), np.float32)
            refs = self._refs.get(ids=missing, include=["documents", "metadatas"])
            out += [(doc, zeros) for _, doc in self._documents(refs)]
        return out

    # -- the LangChain VectorStore API ---------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store texts (an id that exists is replaced). Texts are grouped into documents by their
        ``doc_id`` or ``source`` metadata (a text with neither is a document of its own), which
        ``paperchat list`` shows and ``paperchat delete`` removes. Takes the index's write lock."""
        texts = [str(t) for t in texts]
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        chunk_ids = [str(i) if i else uuid.uuid4().hex for i in (ids or [None] * len(texts))]
        metas = [_check_metadata(dict(m or {}), i) for i, m in enumerate(metadatas or [{}] * len(texts))]
        last = {cid: i for i, cid in enumerate(chunk_ids)}  # an id given twice: the later text wins
        keep = sorted(last.values())
        if not keep:
            return []
        with self.write_lock():
            owners = self._owners([chunk_ids[i] for i in keep])
            papers = sorted(cid for cid, (_, api) in owners.items() if not api)
            if papers:
                raise PaperchatError(
                    f"The id(s) {papers[:3]} belong to indexed papers; remove the paper (paperchat delete DOC) "
                    "instead of overwriting its chunks."
                )
            vectors = embed_texts(self.embedder, [texts[i] for i in keep])
            rows = []
            for i, vector in zip(keep, vectors, strict=True):
                meta = metas[i]
                doc_id = _api_doc_id(meta, chunk_ids[i])
                added = [] if "doc_id" in meta else ["doc_id"]
                stored = {**meta, "doc_id": doc_id, HIDDEN_KEYS: ",".join(added)}
                rows.append((chunk_ids[i], texts[i], stored, vector))
            batch = self._max_batch()
            touched = {r[2]["doc_id"]: r[2] for r in rows}
            previous = {doc for doc, _ in owners.values()}
            with self.changes.record("texts", [*touched, *previous]):
                for start in range(0, len(rows), batch):
                    part = rows[start : start + batch]
                    self._chunks.upsert(
                        ids=[r[0] for r in part], documents=[r[1] for r in part], metadatas=[r[2] for r in part],
                        embeddings=np.stack([r[3] for r in part]),
                    )
                self._update_api_records(touched, previous)
        return [chunk_ids[i] for i in range(len(texts))]

    def _owners(self, chunk_ids: list[str]) -> dict[str, tuple[str, bool]]:
        """For chunk ids that exist: their document id and whether they were added through the API."""
        out: dict[str, tuple[str, bool]] = {}
        for collection in (self._chunks, self._refs):
            got = collection.get(ids=chunk_ids, include=["metadatas"])
            for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
                meta = meta or {}
                out[cid] = (str(meta.get("doc_id", "")), HIDDEN_KEYS in meta)
        return out

    def _update_api_records(self, touched: dict[str, dict[str, Any]], previous: set[str]) -> None:
        """Recount the chunks of API documents that gained or lost texts; a document left empty goes."""
        for doc_id in sorted(set(touched) | previous):
            count = len(self._chunks.get(where={"doc_id": doc_id}, include=[])["ids"])
            if count == 0:
                self._docs.delete(ids=[doc_id])
                continue
            meta = touched.get(doc_id)
            if meta is None:  # lost texts only: its other fields stay
                if self.get_document(doc_id) is not None:
                    self._docs.update(ids=[doc_id], metadatas=[{"chunks": count, "rev": time.time_ns()}])
                continue
            source = str(meta.get("source", "") or "")
            name = Path(source).name if source else f"text {doc_id[:8]}"
            self._docs.upsert(
                ids=[doc_id],
                embeddings=[[1.0]],
                metadatas=[{
                    "file": name, "path": source, "paths": source, "title": str(meta.get("title") or name),
                    "pages": int(meta["page"]) + 1 if isinstance(meta.get("page"), int) else 1, "chunks": count,
                    "sha256": "", "kind": API_KIND, "status": "complete", "rev": time.time_ns(),
                    "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }],
            )
        self.generation += 1

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete texts added through the API by id (unknown ids are ignored); ``None`` deletes everything.
        A paper's chunks go with the paper: :meth:`delete_document` (``paperchat delete DOC``)."""
        with self.write_lock():
            if ids is None:
                for record in self.list_documents(include_partial=True):
                    self.delete_document(record.id)
                return True
            owners = self._owners([str(i) for i in ids])
            papers = sorted(cid for cid, (_, api) in owners.items() if not api)
            if papers:
                raise PaperchatError(
                    f"The id(s) {papers[:3]} are chunks of indexed papers; remove whole papers with "
                    "paperchat delete DOC (PaperIndex.delete_document)."
                )
            if owners:
                previous = {doc for doc, _ in owners.values()}
                with self.changes.record("texts", previous):
                    self._chunks.delete(ids=list(owners))
                    self._update_api_records({}, previous)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The chunks (papers' or API texts) with these ids; unknown ids are left out."""
        if not ids:
            return []
        out = []
        for collection in (self._chunks, self._refs):
            out += [doc for _, doc in self._documents(collection.get(ids=list(ids), include=["documents", "metadatas"]))]
        return out

    def _query_hits(
        self, vector: np.ndarray, k: int, filter: dict[str, Any] | None, papers: Any, with_embeddings: bool = False
    ) -> list[SearchHit]:
        paper_ids = self.resolve_papers(papers) if papers else None
        hits = self.nearest(np.asarray([vector]), k, paper_ids, None, filter, with_embeddings)[0]
        complete = self.complete_ids()
        return [h for h in hits if h.doc_id in complete]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None, papers: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Chunks nearest to a vector (cosine), within ``papers`` or a Chroma ``filter`` if given."""
        vector = np.asarray(embedding, dtype=np.float32)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return [h.document for h in self._query_hits(vector, k, filter, papers)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, papers: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Chunks nearest to the query with their cosine distance (lower is closer), as ``langchain-chroma``."""
        hits = self._query_hits(embed_question(self.embedder, query), k, filter, papers)
        return [(h.document, 1.0 - h.score) for h in hits]

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, papers: Any = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` chunks nearest to the query (dense, cosine); ``papers`` (ids, file names or titles) or a
        Chroma ``filter`` restrict the search. The hybrid (dense + keyword) search is :meth:`as_retriever`."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, papers)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Cosine distance to a relevance in [0, 1]: the cosine similarity, negative ones as 0."""
        return lambda distance: min(1.0, max(0.0, 1.0 - distance))

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        papers: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` chunks chosen among the ``fetch_k`` nearest for relevance and diversity (MMR)."""
        return self.max_marginal_relevance_search_by_vector(
            embed_question(self.embedder, query).tolist(), k, fetch_k, lambda_mult, filter=filter, papers=papers
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        papers: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR for a query vector."""
        vector = np.asarray(embedding, dtype=np.float32)
        hits = self._query_hits(vector, fetch_k, filter, papers, with_embeddings=True)
        if not hits:
            return []
        chosen = maximal_marginal_relevance(vector, [h.embedding for h in hits], lambda_mult=lambda_mult, k=k)
        return [hits[i].document for i in chosen]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        db: str | Path | None = None,
        collection: str | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> PaperIndex:
        """Open an index (``db``, ``collection``, ``settings`` as for :meth:`open`) and add the texts."""
        index = cls.open(db, collection, embedding=embedding, settings=settings)
        index.add_texts(texts, metadatas, ids=ids)
        return index

    def as_retriever(self, **kwargs: Any) -> Any:
        """The hybrid :class:`~paperchat.vectorstore.retriever.PaperRetriever` over this index (dense and
        keyword rankings fused); ``search_kwargs`` may hold ``k``, ``papers``, ``sections``,
        ``include_references``; other keywords are the retriever's fields (``mode``, ``fetch_k``, ...)."""
        from paperchat.vectorstore.retriever import PaperRetriever

        kwargs.pop("search_type", None)  # one search: hybrid (or dense with mode="dense")
        return PaperRetriever(index=self, **kwargs)

    def close(self) -> None:
        """Release the Chroma client (embedded stores: the folder's files)."""
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - nothing to release on older clients
            pass
