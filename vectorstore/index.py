"""The Chroma index of paper chunks: open (embedded folder or server), write documents, search, list, delete.

Three Chroma collections per paperchat collection:

* ``<name>``: one record per chunk (text, embedding, metadata: doc_id, file, title, page, page_end,
  section, in_references, chunk). This is an ordinary ``langchain_chroma.Chroma`` store
  (:attr:`PaperIndex.vectorstore`), cosine space.
* ``<name>__references``: the chunks of reference lists, text and metadata without embeddings. They are
  excluded from answers by default and found by keyword when asked for; not embedding them saves a
  quarter of the indexing time of a typical paper (``bench/ingest.py``).
* ``<name>__documents``: one record per document (file, title, pages, chunks, sha256, status). A document
  is written ``partial`` first and marked ``complete`` after its last chunk, so an interrupted run is
  detected and redone, and queries never see a half-written document as complete.

The chunk collection records which embedder (and dimension) and which chunking built it; opening it with
another embedder raises :class:`~paperchat.vectorstore.errors.EmbedderMismatchError` instead of returning garbage.

Every call to Chroma goes through :mod:`paperchat.vectorstore.guard`: a server that went away is one
clear :class:`~paperchat.vectorstore.errors.IndexUnavailableError`, and an embedded store that another process
wrote to is reopened. Searches within papers score those papers' chunks exactly (:meth:`PaperIndex.nearest`).

Example:
    >>> from paperchat.vectorstore.settings import Settings
    >>> from paperchat.vectorstore.index import PaperIndex
    >>> index = PaperIndex.open(Settings(db="/tmp/papers-db"))
    >>> [d.file for d in index.list_documents()]
    []
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document

from paperchat.vectorstore.chunk import CHUNKER_VERSION
from paperchat.vectorstore.embed import VectorCache, make_embedder
from paperchat.vectorstore.errors import EmbedderMismatchError, IndexUnavailableError, PaperchatError
from paperchat.vectorstore.guard import GuardedCollection, SharedExclusiveLock
from paperchat.vectorstore.settings import Settings
from paperchat.vectorstore.types import Chunk, DocumentRecord, ParsedDocument, page_ranges, parse_page_ranges

_DOCS_SUFFIX = "__documents"
#: Reference-list chunks: text and metadata only, searched by keyword (BM25), never embedded.
_REFS_SUFFIX = "__references"
_META_EMBEDDER = "paperchat_embedder"
_META_DIMENSION = "paperchat_dimension"
_META_CHUNKING = "paperchat_chunking"
#: Seconds for which the set of complete documents is reused before Chroma is asked again.
COMPLETE_IDS_MAX_AGE_S = 2.0
#: Seconds between two reopenings of an embedded store that another process is writing to.
REOPEN_INTERVAL_S = 10.0
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


def make_client(settings: Settings) -> Any:
    """A Chroma client: ``HttpClient`` when a host is configured, else ``PersistentClient`` on ``settings.db``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.uses_server:
            return chromadb.HttpClient(
                host=settings.chroma_host or "localhost", port=settings.chroma_port, settings=chroma_settings
            )
        Path(settings.db).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.db), settings=chroma_settings)
    except Exception as exc:  # chromadb raises plain ValueError/ConnectError here
        raise IndexUnavailableError(index_unavailable_message(settings, exc)) from exc


def drop_collection(client: Any, name: str) -> None:
    """Delete a paperchat collection and its document records (``--rebuild``); absent ones are fine."""
    existing = {c.name for c in client.list_collections()}
    for coll in (name, name + _DOCS_SUFFIX, name + _REFS_SUFFIX):
        if coll in existing:
            client.delete_collection(coll)


@dataclass(slots=True)
class SearchHit:
    """One retrieved chunk with its cosine similarity to the query."""

    document: Document
    score: float


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
                kind=str(meta.get("kind", "")),
                status=str(meta.get("status", "complete")),
                ocr_pages=parse_page_ranges(str(meta.get("ocr_pages", ""))),
            )
        )
    return records


class PaperIndex:
    """A paper collection in Chroma: chunks with embeddings, plus a record per document.

    Args:
        settings: Where the index lives and which embedder builds it.
        embedder: An embedder to use instead of the one the settings name (tests, custom models).
        client: An existing Chroma client.
    """

    def __init__(self, settings: Settings, embedder: Any | None = None, client: Any | None = None) -> None:
        self.settings = settings
        self.embedder = embedder if embedder is not None else make_embedder(settings)
        self._store_lock = SharedExclusiveLock()
        self._connect(client)
        self._chunks = GuardedCollection(self, "chunks")
        self._docs = GuardedCollection(self, "docs")
        self._refs = GuardedCollection(self, "refs")
        #: Changes with every write through this object, so that derived data (the BM25 sidecar) can tell.
        self.generation = 0
        self._complete: tuple[int, float, frozenset[str]] | None = None
        self._reopened_at = time.monotonic()
        #: Recent question and sentence vectors, shared by the retriever and the extractive answerer.
        self.vector_cache = VectorCache(self.embedder, VECTOR_CACHE_SIZE)

    def _connect(self, client: Any | None = None) -> None:
        """Open the client and the three collections (checking the embedder that built them)."""
        from langchain_chroma import Chroma

        settings = self.settings
        self.client = client if client is not None else make_client(settings)
        name = settings.collection
        try:
            existing = {c.name for c in self.client.list_collections()}
        except Exception as exc:
            raise IndexUnavailableError(index_unavailable_message(settings, exc)) from exc
        self._check_embedder(name, existing)
        self.vectorstore = Chroma(
            client=self.client,
            collection_name=name,
            embedding_function=self.embedder,
            collection_metadata={
                _META_EMBEDDER: self.embedder.name,
                _META_DIMENSION: int(self.embedder.dimension),
                _META_CHUNKING: chunking_signature(settings),
            },
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self.collections = {
            "chunks": self.vectorstore._collection,
            "docs": self.client.get_or_create_collection(name + _DOCS_SUFFIX, embedding_function=None),
            "refs": self.client.get_or_create_collection(name + _REFS_SUFFIX, embedding_function=None),
        }

    def reopen(self) -> bool:
        """Reopen an embedded store, so that it sees what other processes wrote since it was opened.

        A Chroma folder opened by one process does not load vectors that another process adds later
        (``paperchat index`` while the chat app runs). Waits for the calls in flight. Returns False for
        a Chroma server, which needs no reopening.
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
        return True

    @classmethod
    def open(cls, settings: Settings | None = None, rebuild: bool = False, **kwargs: Any) -> PaperIndex:
        """Open (creating if needed) the index the settings describe; ``rebuild`` empties it first."""
        settings = settings or Settings()
        if rebuild:
            client = kwargs.pop("client", None) or make_client(settings)
            drop_collection(client, settings.collection)
            kwargs["client"] = client
        return cls(settings, **kwargs)

    # -- identity ------------------------------------------------------------------------------

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
        if built_by != self.embedder.name or (dim is not None and int(dim) != int(self.embedder.dimension)):
            raise EmbedderMismatchError(
                f"The collection '{name}' was built with the embedder '{built_by}' ({dim} dimensions), "
                f"but the configured embedder is '{self.embedder.name}'. Its vectors cannot be compared. "
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

    # -- documents -----------------------------------------------------------------------------

    def list_documents(self, include_partial: bool = False) -> list[DocumentRecord]:
        """Every indexed document, sorted by file name."""
        records = _records_from_get(self._docs.get(include=["metadatas"]))
        if not include_partial:
            records = [r for r in records if r.status == "complete"]
        return sorted(records, key=lambda r: (r.file.lower(), r.id))

    def complete_ids(self) -> frozenset[str]:
        """Ids of the complete documents, as of at most :data:`COMPLETE_IDS_MAX_AGE_S` ago.

        Writes through this object are seen at once; writes by other processes (``paperchat index``
        while the app runs) within that time, and then the store is reopened (at most every
        :data:`REOPEN_INTERVAL_S`) so that their vectors are searched too. Queries use it to leave out
        the chunks of a document that is still being written, or whose writing was interrupted.
        """
        now = time.monotonic()
        cached = self._complete
        if cached is None or cached[0] != self.generation or now - cached[1] > COMPLETE_IDS_MAX_AGE_S:
            ids = frozenset(self._docs.get(where={"status": "complete"}, include=[])["ids"])
            written_elsewhere = cached is not None and cached[0] == self.generation and ids != cached[2]
            if written_elsewhere and now - self._reopened_at > REOPEN_INTERVAL_S and self.reopen():
                ids = frozenset(self._docs.get(where={"status": "complete"}, include=[])["ids"])
            cached = self._complete = (self.generation, now, ids)
        return cached[2]

    def get_document(self, doc_id: str) -> DocumentRecord | None:
        """The record of one document by its id, or ``None``."""
        records = _records_from_get(self._docs.get(ids=[doc_id], include=["metadatas"]))
        return records[0] if records else None

    def resolve(self, ref: str) -> DocumentRecord:
        """Find one complete document by id (or id prefix), file name, path or exact title."""
        ref = ref.strip()
        exact = self.get_document(ref) if ref else None
        if exact is not None and exact.status == "complete":
            return exact  # the common case (the app and batch extraction pass ids) reads one record
        records = self.list_documents()
        for match in (
            lambda r: r.id == ref,
            lambda r: r.file == ref or r.path == ref or Path(ref).name == r.file,
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

    def count_chunks(self) -> int:
        """Number of chunks, embedded ones and reference-list ones."""
        return int(self._chunks.count()) + int(self._refs.count())

    def write_document(self, parsed: ParsedDocument, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Store a document's chunks and mark it complete (partial until the last chunk is written).

        ``embeddings`` are those of the chunks outside the references (:func:`embedded_chunks`), in order;
        reference-list chunks are stored for keyword search without one.
        """
        meta = {
            "file": parsed.file,
            "path": parsed.path,
            "title": parsed.title,
            "pages": parsed.n_pages,
            "chunks": len(chunks),
            "sha256": parsed.sha256,
            "kind": parsed.kind,
            "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "partial",
        }
        if parsed.doi:
            meta["doi"] = parsed.doi
        if parsed.ocr_pages:
            meta["ocr_pages"], meta["ocr_engine"] = page_ranges(parsed.ocr_pages), parsed.ocr_engine
        self._docs.upsert(ids=[parsed.doc_id], metadatas=[meta], embeddings=[[1.0]])
        # Chunks left by an interrupted earlier run of this same document go first.
        self._chunks.delete(where={"doc_id": parsed.doc_id})
        self._refs.delete(where={"doc_id": parsed.doc_id})
        body = embedded_chunks(chunks)
        if len(body) != len(embeddings):
            raise ValueError(f"{len(body)} chunks to embed but {len(embeddings)} embeddings")
        refs = [c for c in chunks if c.in_references]
        batch = max(1, min(1000, self._max_batch()))
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
            return int(self.client.get_max_batch_size())
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
        for collection in (self._chunks, self._refs):
            removed += len(collection.get(where={"doc_id": doc_id}, include=[])["ids"])
            collection.delete(where={"doc_id": doc_id})
        self._docs.delete(ids=[doc_id])
        self.generation += 1
        return removed

    def update_path(self, doc_id: str, path: str, file: str) -> None:
        """Record where a known document now lives (renamed or moved file, same content)."""
        self._docs.update(ids=[doc_id], metadatas=[{"path": path, "file": file}])

    # -- reading -------------------------------------------------------------------------------

    def where(
        self,
        papers: Iterable[str] | None = None,
        sections: Iterable[str] | None = None,
    ) -> dict[str, Any] | None:
        """A Chroma ``where`` filter for paper ids and sections, for the embedded chunks.

        Reference-list chunks are not in the embedded collection (they are found by keyword), so the
        references switch needs no clause here: a filter that matched every chunk would make Chroma
        check the metadata of the whole collection on every query.
        """
        clauses: list[dict[str, Any]] = []
        paper_ids = list(papers or [])
        if paper_ids:
            clauses.append({"doc_id": {"$in": paper_ids}} if len(paper_ids) > 1 else {"doc_id": paper_ids[0]})
        section_list = list(sections or [])
        if section_list:
            clauses.append({"section": {"$in": section_list}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def dense_search(
        self, query_vectors: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[list[SearchHit]]:
        """Nearest chunks for each query vector (cosine similarity in ``score``)."""
        if len(query_vectors) == 0:
            return []
        result = self._chunks.query(
            query_embeddings=np.asarray(query_vectors, dtype=np.float32),
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        out = []
        for ids, docs, metas, dists in zip(
            result["ids"], result["documents"], result["metadatas"], result["distances"], strict=True
        ):
            out.append(
                [
                    SearchHit(Document(page_content=text, metadata={**(meta or {}), "id": cid}), 1.0 - float(d))
                    for cid, text, meta, d in zip(ids, docs, metas, dists, strict=True)
                ]
            )
        return out

    def nearest(
        self,
        query_vectors: np.ndarray,
        k: int,
        papers: Sequence[str] | None = None,
        sections: Sequence[str] | None = None,
    ) -> list[list[SearchHit]]:
        """Nearest embedded chunks for each query vector, within papers and sections if given.

        Within papers of up to :data:`EXACT_SEARCH_MAX` chunks in all, every chunk is scored exactly:
        their vectors are read by id (the ids follow from the document records), which is faster than
        Chroma's filtered approximate search at any collection size and never misses a chunk. Otherwise
        Chroma's HNSW index answers, with a metadata filter.
        """
        vectors = np.asarray(query_vectors, dtype=np.float32)
        if len(vectors) == 0:
            return []
        records = _records_from_get(self._docs.get(ids=list(papers), include=["metadatas"])) if papers else []
        if not papers or sum(r.chunks for r in records) > EXACT_SEARCH_MAX:
            return self.dense_search(vectors, k, self.where(papers, sections))
        ids = [f"{r.id}:{i:05d}" for r in records for i in range(r.chunks)]
        got = self._chunks.get(ids=ids, include=["embeddings", "metadatas"] if sections else ["embeddings"])
        found = list(got["ids"])
        if sections:
            wanted = set(sections)
            keep = [i for i, m in enumerate(got["metadatas"]) if (m or {}).get("section") in wanted]
        else:
            keep = list(range(len(found)))
        if not keep:
            return [[] for _ in vectors]
        matrix = np.asarray(got["embeddings"], dtype=np.float32)[keep]
        found = [found[i] for i in keep]
        scores = vectors @ matrix.T
        top = [np.argsort(-row, kind="stable")[:k] for row in scores]
        texts = self._chunks.get(ids=list({found[j] for row in top for j in row}), include=["documents", "metadatas"])
        by_id = {cid: (text, meta) for cid, text, meta in zip(texts["ids"], texts["documents"], texts["metadatas"], strict=True)}
        return [
            [
                SearchHit(
                    Document(page_content=by_id[found[j]][0], metadata={**(by_id[found[j]][1] or {}), "id": found[j]}),
                    float(row_scores[j]),
                )
                for j in row
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
        """Dense search for one query, optionally restricted to papers and sections (reference lists, which
        have no embeddings, are found by :class:`~paperchat.vectorstore.retriever.PaperRetriever`'s keyword search)."""
        vector = np.asarray([self.embedder.embed_query(query)], dtype=np.float32)
        return self.nearest(vector, k, list(papers or []), list(sections or []))[0]

    def get_chunks(self, where: dict[str, Any] | None = None, include_references: bool = True) -> list[Document]:
        """All chunks matching a filter (reference-list chunks too, unless excluded), as LangChain documents
        in document order (metadata includes ``id``)."""
        docs = []
        for collection in (self._chunks, self._refs) if include_references else (self._chunks,):
            result = collection.get(where=where, include=["documents", "metadatas"])
            docs += [
                Document(page_content=text, metadata={**(meta or {}), "id": cid})
                for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"], strict=True)
            ]
        return sorted(docs, key=lambda d: d.metadata["id"])

    def get_chunks_with_embeddings(self, ids: Sequence[str]) -> list[tuple[Document, np.ndarray]]:
        """Chunks by id, each with its stored embedding."""
        if not ids:
            return []
        got = self._chunks.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        out = [
            (Document(page_content=text, metadata={**(meta or {}), "id": cid}), np.asarray(emb, dtype=np.float32))
            for cid, text, meta, emb in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
        ]
        have = set(got["ids"])
        missing = [i for i in ids if i not in have]
        if missing:  # reference-list chunks have no embedding: zero similarity
            refs = self._refs.get(ids=missing, include=["documents", "metadatas"])
            out += [
                (Document(page_content=text, metadata={**(meta or {}), "id": cid}), np.zeros(int(self.embedder.dimension), np.float32))
                for cid, text, meta in zip(refs["ids"], refs["documents"], refs["metadatas"], strict=True)
            ]
        return out
