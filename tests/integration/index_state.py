"""What a fresh reader process sees in an index, as JSON: ``python -m tests.integration.index_state DB
[COLLECTION [PORT]]`` (with a port: the collection on the Chroma server at 127.0.0.1:PORT, DB the reader's
working folder).

Used by the fault tests and ``bench/reliability.py``: run in its own process, so nothing is cached from
the process that wrote the index.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

QUERIES = ["Which deep learning framework was used?", "How were the images annotated?", "urban ecoacoustics"]


def index_state(db: str | Path, collection: str = "papers", port: int | None = None) -> dict[str, Any]:
    """Complete and partial documents, every chunk id, and what queries return."""
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings

    server = {"chroma_host": "127.0.0.1", "chroma_port": port} if port else {}
    index = PaperIndex.open(Settings(db=db, collection=collection, **server))
    records = index.list_documents(include_partial=True)
    ids = sorted(set(index._chunks.get(include=[])["ids"]) | set(index._refs.get(include=[])["ids"]))
    complete = {r.id: r.chunks for r in records if r.status == "complete"}
    per_doc = Counter(i.split(":")[0] for i in ids)
    retriever = PaperRetriever(index=index, k=20)
    returned = {d.metadata["doc_id"] for q in QUERIES for d in retriever.invoke(q)}
    lexical = retriever.lexical()
    rows: dict[str, int] = {}
    if lexical is not None:
        with sqlite3.connect(lexical.path) as conn:
            rows = dict(conn.execute("SELECT doc_id, count(*) FROM chunks GROUP BY doc_id").fetchall())
    return {
        "complete": complete,
        "partial": sorted(r.id for r in records if r.status != "complete"),
        "ids": ids,
        # a complete document must have every chunk it says it has, no more, no fewer
        "inconsistent": sorted(d for d, n in complete.items() if per_doc[d] != n),
        "returned_docs": sorted(returned),
        "lexical_rows": rows,
    }


if __name__ == "__main__":
    print(json.dumps(index_state(sys.argv[1], *(sys.argv[2:3]), *(int(p) for p in sys.argv[3:4]))))
