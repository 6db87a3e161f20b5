"""The paper-chunk retriever: dense (Chroma) and lexical (BM25) rankings fused by reciprocal rank.

An ordinary LangChain ``BaseRetriever``: ``invoke``, ``batch``, ``ainvoke`` and callbacks work as for any
retriever. As LangChain retrievers do, ``k`` is a constructor field and a per-call keyword, and
``search_kwargs`` holds defaults. Filters (papers, sections, references) can be fixed on the retriever or
passed per call; papers are named by document id, file name or title, as on the command line:
``retriever.invoke("Which GPU?", papers=["younis2020_herbarium_plant_organs.pdf"], k=3)``.

Why hybrid, measured on the dev sets (README, "Retrieval"): dense alone misses exact names and numbers
that questions mention, BM25 alone misses paraphrases; their reciprocal-rank fusion was better than
either on both sets.

Example:
    >>> from paperchat.vectorstore import PaperIndex
    >>> retriever = PaperRetriever(index=PaperIndex.open(), k=4)  # doctest: +SKIP
    >>> [d.metadata["file"] for d in retriever.invoke("Which framework was used?")]  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from paperchat.vectorstore.embed import embed_texts
from paperchat.vectorstore.errors import EmptyIndexError, PaperchatError
from paperchat.vectorstore.index import empty_index_message
from paperchat.vectorstore.lexical import FTS5, LexicalIndex
from paperchat.vectorstore.lexicon import expand_query

#: What can be passed per call (and in ``search_kwargs``).
SEARCH_KWARGS = ("k", "papers", "sections", "include_references")
MAX_K = 500


def rrf(rankings: Sequence[Sequence[str]], k: int = 60, weights: Sequence[float] | None = None) -> dict[str, float]:
    """Reciprocal rank fusion: each list gives ``weight / (k + rank)`` to its items (rank from 1)."""
    fused: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def check_k(k: Any) -> int:
    """``k`` as an int in 1..500, or a clear error."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_K:
        raise PaperchatError(f"k must be a whole number from 1 to {MAX_K} (excerpts to retrieve), not {k!r}.")
    return int(k)


class PaperRetriever(BaseRetriever):
    """Retrieves paper chunks from a :class:`~paperchat.vectorstore.index.PaperIndex`.

    Each returned document's ``id`` is its chunk id; its metadata has ``doc_id``, ``file``, ``title``,
    ``source``, ``page``, ``page_end``, ``section`` (texts added through the ``VectorStore`` API keep their
    own metadata), and the scores: ``score`` (fused), ``similarity`` (cosine to the query), ``bm25``.

    Args:
        index: The paper index.
        k: Excerpts returned (1-500).
        mode: "hybrid" (dense + BM25, fused) or "dense".
        fetch_k: Candidates taken from each ranking before fusion.
        rrf_k: The constant of reciprocal rank fusion.
        papers: Papers to search by default: document ids, file names or titles (None = all).
        sections: Section headings to search by default (None = all).
        include_references: Also search reference lists.
        expand_queries: Search lexically for the question's answer type too (``paperchat.vectorstore.lexicon``).
        search_kwargs: Defaults for the per-call keywords (``k``, ``papers``, ``sections``, ``include_references``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = Field(default=6, ge=1, le=MAX_K)
    mode: Literal["hybrid", "dense"] = "hybrid"
    fetch_k: int = Field(default=30, ge=1)
    rrf_k: int = 60
    papers: list[str] | str | None = None
    sections: list[str] | None = None
    include_references: bool = False
    expand_queries: bool = True
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    _lexical: LexicalIndex | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def lexical(self) -> LexicalIndex | None:
        """The BM25 sidecar, following the index's change log (None in dense mode, without SQLite FTS5, or
        while a first copy of a large collection is made in the background: the dense ranking answers)."""
        if self.mode != "hybrid" or not FTS5:
            return None
        with self._lock:
            if self._lexical is None:
                self._lexical = LexicalIndex.for_index(self.index)
            return self._lexical if self._lexical.follow(self.index) else None

    def prepare_lexical(self, progress: Any = None) -> dict[str, Any] | None:
        """Bring the BM25 sidecar up to date now (a first copy is made in bulk, ``progress`` told
        ``(chunks copied, chunks in all)``); returns the copy's :meth:`LexicalIndex.last_build` when one
        was made by this call, else None."""
        if self.mode != "hybrid" or not FTS5:
            return None
        with self._lock:
            if self._lexical is None:
                self._lexical = LexicalIndex.for_index(self.index)
            lexical = self._lexical
            building = not lexical.is_current(self.index)
            lexical.sync(self.index, progress=progress)
            return lexical.last_build() if building else None

    def ensure_not_empty(self) -> None:
        """Raise :class:`~paperchat.vectorstore.errors.EmptyIndexError` (naming the index and how to build it)
        when the index has no papers: a typo in a path answers nothing, and should say so."""
        if self.index.is_empty():
            raise EmptyIndexError(empty_index_message(self.index.settings))

    def options(self, **kwargs: Any) -> dict[str, Any]:
        """The search options of one call: constructor fields, then ``search_kwargs``, then ``kwargs``;
        validated, papers resolved to document ids."""
        unknown = sorted(set(kwargs) - set(SEARCH_KWARGS)) + sorted(set(self.search_kwargs) - set(SEARCH_KWARGS))
        if unknown:
            raise PaperchatError(f"Unknown search option(s) {unknown}: PaperRetriever accepts {list(SEARCH_KWARGS)}.")
        merged: dict[str, Any] = {
            "k": self.k, "papers": self.papers, "sections": self.sections, "include_references": self.include_references,
        }
        merged.update({key: value for key, value in {**self.search_kwargs, **kwargs}.items() if value is not None})
        merged["k"] = check_k(merged["k"])
        merged["papers"] = self.index.resolve_papers(merged["papers"]) if merged["papers"] else None
        merged["sections"] = [merged["sections"]] if isinstance(merged["sections"], str) else merged["sections"]
        return merged

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        opts = self.options(**kwargs)
        cache = getattr(self.index, "vector_cache", None)
        # the extractive answerer embeds the same question: once is enough
        vector = cache.embed([query]) if cache is not None else embed_texts(self.index.embedder, [query])
        return self.retrieve_with_vectors([query], vector, opts["papers"], opts["sections"], opts["k"],
                                          opts["include_references"])[0]

    def retrieve_many(
        self,
        queries: Sequence[str],
        papers: Sequence[str] | None = None,
        k: int | None = None,
        vectors: np.ndarray | None = None,
    ) -> list[list[Document]]:
        """Retrieve for several queries with one embedding pass (batch extraction); ``papers`` are ids."""
        if vectors is None:
            vectors = embed_texts(self.index.embedder, list(queries))
        return self.retrieve_with_vectors(queries, vectors, papers, None, k, None)

    def retrieve_with_vectors(
        self,
        queries: Sequence[str],
        vectors: np.ndarray,
        papers: Sequence[str] | None = None,
        sections: Sequence[str] | None = None,
        k: int | None = None,
        include_references: bool | None = None,
    ) -> list[list[Document]]:
        """Retrieve for queries whose embeddings are already known (``papers`` are document ids)."""
        papers = list(papers) if papers else (self.index.resolve_papers(self.papers) if self.papers else None)
        sections = list(sections) if sections else self.sections
        refs = self.include_references if include_references is None else include_references
        k = k or self.k
        vectors = np.asarray(vectors, dtype=np.float32)
        dense = self.index.nearest(vectors, max(k, self.fetch_k), papers, sections)
        lexical = self.lexical()
        # chunks of a document still being written (or deleted meanwhile) are not shown
        complete = self.index.complete_ids()
        found_per_query = []
        missing: dict[str, None] = {}  # ordered set
        for query, hits in zip(queries, dense, strict=True):
            hits = [h for h in hits if h.doc_id in complete]
            bm25: dict[str, float] = {}
            rankings = [[h.document.id for h in hits]]
            if lexical is not None:
                terms = expand_query(query) if self.expand_queries else query
                found = lexical.search(terms, self.fetch_k, doc_ids=papers, include_references=refs)
                bm25 = dict(found)
                rankings.append([chunk_id for chunk_id, _ in found])
            fused = rrf(rankings, self.rrf_k)
            top = sorted(fused, key=lambda cid: -fused[cid])
            found_per_query.append((hits, bm25, fused, top))
            dense_ids = {h.document.id for h in hits}
            missing.update((cid, None) for cid in top if cid not in dense_ids)
        # chunks found only by keywords, for every query at once: one read of their text and vectors
        fetched = self.index.get_chunks_with_embeddings(list(missing)) if missing else []
        extra = {str(doc.id): doc for doc, _ in fetched}
        extra_vectors = np.stack([v for _, v in fetched]) if fetched else None
        results = []
        for vector, (hits, bm25, fused, top) in zip(vectors, found_per_query, strict=True):
            by_id = {**extra, **{h.document.id: h.document for h in hits}}
            similarity = dict(zip(extra, (extra_vectors @ vector).tolist(), strict=True)) if extra_vectors is not None else {}
            similarity.update({h.document.id: h.score for h in hits})
            docs = []
            for cid in top:
                doc = by_id.get(cid)
                if doc is None or (sections and doc.metadata.get("section") not in sections):
                    continue
                meta = {**doc.metadata, "score": fused[cid], "similarity": similarity.get(cid, 0.0), "bm25": bm25.get(cid, 0.0)}
                docs.append(Document(page_content=doc.page_content, metadata=meta, id=cid))
                if len(docs) == k:
                    break
            results.append(docs)
        return results
