"""The paper-chunk retriever: dense (Chroma) and lexical (BM25) rankings fused by reciprocal rank.

An ordinary LangChain ``BaseRetriever``: ``invoke``, ``batch``, ``ainvoke`` and callbacks work as for any
retriever. Filters (papers, sections, references) can be fixed on the retriever or passed per call:
``retriever.invoke("Which GPU?", papers=["38cc55fbbcfee4cb"])``.

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
from pydantic import ConfigDict, PrivateAttr

from paperchat.vectorstore.lexical import FTS5, LexicalIndex
from paperchat.vectorstore.lexicon import expand_query


def rrf(rankings: Sequence[Sequence[str]], k: int = 60, weights: Sequence[float] | None = None) -> dict[str, float]:
    """Reciprocal rank fusion: each list gives ``weight / (k + rank)`` to its items (rank from 1)."""
    fused: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


class PaperRetriever(BaseRetriever):
    """Retrieves paper chunks from a :class:`~paperchat.vectorstore.index.PaperIndex`.

    Each returned document's metadata has ``id``, ``doc_id``, ``file``, ``title``, ``page``, ``page_end``,
    ``section``, and the scores: ``score`` (fused), ``similarity`` (cosine to the query), ``bm25``.

    Args:
        index: The paper index.
        k: Excerpts returned.
        mode: "hybrid" (dense + BM25, fused) or "dense".
        fetch_k: Candidates taken from each ranking before fusion.
        rrf_k: The constant of reciprocal rank fusion.
        papers: Document ids to search by default (None = all).
        sections: Section headings to search by default (None = all).
        include_references: Also search reference lists.
        expand_queries: Search lexically for the question's answer type too (``paperchat.vectorstore.lexicon``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 6
    mode: Literal["hybrid", "dense"] = "hybrid"
    fetch_k: int = 30
    rrf_k: int = 60
    papers: list[str] | None = None
    sections: list[str] | None = None
    include_references: bool = False
    expand_queries: bool = True

    _lexical: LexicalIndex | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def lexical(self) -> LexicalIndex | None:
        """The BM25 sidecar, in step with the index (None in dense mode or without SQLite FTS5)."""
        if self.mode != "hybrid" or not FTS5:
            return None
        with self._lock:
            if self._lexical is None:
                self._lexical = LexicalIndex.for_index(self.index)
            self._lexical.sync(self.index)
            return self._lexical

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        papers: Sequence[str] | None = None,
        sections: Sequence[str] | None = None,
        k: int | None = None,
        include_references: bool | None = None,
    ) -> list[Document]:
        cache = getattr(self.index, "vector_cache", None)
        if cache is not None:  # the extractive answerer embeds the same question: once is enough
            vector = cache.embed([query])
        else:
            vector = np.asarray([self.index.embedder.embed_query(query)], dtype=np.float32)
        return self.retrieve_with_vectors([query], vector, papers, sections, k, include_references)[0]

    def retrieve_many(
        self,
        queries: Sequence[str],
        papers: Sequence[str] | None = None,
        k: int | None = None,
        vectors: np.ndarray | None = None,
    ) -> list[list[Document]]:
        """Retrieve for several queries with one embedding pass (batch extraction)."""
        if vectors is None:
            vectors = self.index.embedder.embed_array(list(queries))
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
        """Retrieve for queries whose embeddings are already known."""
        papers = list(papers) if papers else self.papers
        sections = list(sections) if sections else self.sections
        refs = self.include_references if include_references is None else include_references
        k = k or self.k
        dense = self.index.nearest(np.asarray(vectors, dtype=np.float32), max(k, self.fetch_k), papers, sections)
        lexical = self.lexical()
        # chunks of a document still being written (or whose writing was interrupted) are not shown
        complete = self.index.complete_ids() if hasattr(self.index, "complete_ids") else None
        results = []
        for query, vector, hits in zip(queries, vectors, dense, strict=True):
            if complete is not None:
                hits = [h for h in hits if h.document.metadata.get("doc_id") in complete]
            by_id = {h.document.metadata["id"]: h.document for h in hits}
            similarity = {h.document.metadata["id"]: h.score for h in hits}
            rankings = [[h.document.metadata["id"] for h in hits]]
            bm25: dict[str, float] = {}
            if lexical is not None:
                terms = expand_query(query) if self.expand_queries else query
                found = lexical.search(terms, self.fetch_k, doc_ids=papers, include_references=refs)
                bm25 = dict(found)
                rankings.append([chunk_id for chunk_id, _ in found])
            fused = rrf(rankings, self.rrf_k)
            top = sorted(fused, key=lambda cid: -fused[cid])
            missing = [cid for cid in top if cid not in by_id]
            if missing:
                self._fetch(missing, vector, by_id, similarity)
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

    def _fetch(self, ids: list[str], vector: np.ndarray, by_id: dict[str, Document], similarity: dict[str, float]) -> None:
        """Chunks found only lexically: their text, metadata and cosine similarity to the query."""
        for doc, embedding in self.index.get_chunks_with_embeddings(ids):
            by_id[doc.metadata["id"]] = doc
            similarity[doc.metadata["id"]] = float(np.dot(embedding, vector))
