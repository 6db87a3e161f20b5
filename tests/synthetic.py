"""Large synthetic collections made of real chunks, for the query, load and reliability benchmarks.

The chunks of real papers (the benchmark corpus and ``sample_docs/``) are replicated across synthetic
documents of 100 chunks each, every copy varied so that nothing is trivially cached: a few words dropped
or swapped, a marker added, and the embedding the original's plus seeded Gaussian noise, renormalised
(re-embedding a million texts would take this machine about ten hours; the noise keeps the vectors
distinct while keeping their distribution). They are written to Chroma directly, with their document
records and the BM25 sidecar, exactly as paperchat lays them out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

CHUNKS_PER_DOC = 100


def synthetic_doc_id(i: int) -> str:
    """The id of the i-th synthetic document."""
    return f"syn{i:07d}"


def seed_chunks(paths: Iterable[Path], work: Path, embedder: str = "minilm") -> tuple[list[str], list[dict[str, Any]], np.ndarray]:
    """Real chunks (texts, metadata, embeddings) of the given papers, indexed once."""
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.settings import Settings

    index = PaperIndex.open(Settings(db=work / "seed", collection="seed", embedder=embedder))
    index_paths(index, list(paths))
    got = index._chunks.get(include=["documents", "metadatas", "embeddings"])
    return list(got["documents"]), list(got["metadatas"]), np.asarray(got["embeddings"], dtype=np.float32)


def vary(text: str, rng: random.Random, i: int) -> str:
    """A copy of a chunk with a few words dropped or swapped and a marker added."""
    words = text.split()
    for _ in range(3):
        if len(words) > 10:
            j = rng.randrange(len(words) - 1)
            if rng.random() < 0.5:
                del words[j]
            else:
                words[j], words[j + 1] = words[j + 1], words[j]
    return " ".join(words) + f" (copy {i})"


def build_synthetic(n: int, texts: list[str], metas: list[dict[str, Any]], vectors: np.ndarray, settings: Any) -> dict[str, Any]:
    """An index of ``n`` varied chunks in ``n / 100`` documents, written the way paperchat writes them."""
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.lexical import LexicalIndex, index_text

    start = time.perf_counter()
    index = PaperIndex.open(settings)
    rng, noise = random.Random(n), np.random.default_rng(n)
    lexical = LexicalIndex.for_index(index)
    batch = 5000
    n_docs = (n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC

    def n_chunks(doc: int) -> int:
        return min(CHUNKS_PER_DOC, n - doc * CHUNKS_PER_DOC)

    for start_i in range(0, n, batch):
        idx = np.arange(start_i, min(n, start_i + batch))
        base = idx % len(texts)
        emb = vectors[base] + noise.normal(0, 0.02, size=(len(idx), vectors.shape[1])).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        docs, metadatas, ids = [], [], []
        for i, b in zip(idx, base, strict=True):
            doc_id = synthetic_doc_id(int(i) // CHUNKS_PER_DOC)
            meta = {**metas[b], "doc_id": doc_id, "file": f"{doc_id}.pdf", "title": f"Synthetic paper {doc_id}",
                    "chunk": int(i % CHUNKS_PER_DOC)}
            ids.append(f"{doc_id}:{i % CHUNKS_PER_DOC:05d}")
            docs.append(vary(texts[b], rng, int(i)))
            metadatas.append(meta)
        index._chunks.add(ids=ids, embeddings=emb, documents=docs, metadatas=metadatas)
        with lexical._conn:
            lexical._conn.executemany(
                "INSERT INTO chunks (text, id, doc_id, refs) VALUES (?, ?, ?, ?)",
                [(index_text(t), cid, m["doc_id"], int(bool(m.get("in_references"))))
                 for t, cid, m in zip(docs, ids, metadatas, strict=True)],
            )
    for d in range(0, n_docs, 1000):
        numbers = range(d, min(n_docs, d + 1000))
        doc_ids = [synthetic_doc_id(j) for j in numbers]
        index._docs.add(
            ids=doc_ids,
            embeddings=[[1.0]] * len(doc_ids),
            metadatas=[{"file": f"{x}.pdf", "title": f"Synthetic paper {x}", "pages": 10, "sha256": x,
                        "chunks": n_chunks(j), "status": "complete", "path": f"/synthetic/{x}.pdf"}
                       for j, x in zip(numbers, doc_ids, strict=True)],
        )
        with lexical._conn:
            lexical._conn.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, 0)",
                                      [(x, n_chunks(j)) for j, x in zip(numbers, doc_ids, strict=True)])
    with lexical._conn:  # the sidecar is a whole copy as of the change log's current position
        lexical._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
            ("cursor", str(index.changes.settled())), ("anchor", index.changes.fingerprint(index.changes.settled())),
            ("epoch", index.changes.epoch()),
            ("built_at", time.strftime("%Y-%m-%d %H:%M:%S")), ("built_chunks", str(n)),
            ("built_documents", str(n_docs)), ("built_s", str(round(time.perf_counter() - start, 1)))])
    lexical.close()
    return {"seconds": round(time.perf_counter() - start, 1), "chunks": index.count_chunks(), "documents": n_docs}
