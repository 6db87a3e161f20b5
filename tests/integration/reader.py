"""A reader process for the concurrency tests: ``python -m tests.integration.reader DB``.

Opens the index and the extractive chain, prints ``ready``, then answers one question per line of
standard input with one JSON line (``ok``, ``error``, ``seconds``, ``papers``, the ``files`` of the excerpts)
until standard input closes.
"""

from __future__ import annotations

import json
import sys
import time


def main(db: str) -> None:
    from paperchat.chain import create_qa_chain
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings

    index = PaperIndex.open(Settings(db=db))
    chain = create_qa_chain(PaperRetriever(index=index, k=6))
    chain.invoke({"question": "warm up"})
    print("ready", flush=True)
    for line in sys.stdin:
        start = time.perf_counter()
        try:
            result = chain.invoke({"question": line.strip()})
            reply = {"ok": True, "abstained": result.abstained, "papers": len(index.list_documents()),
                     "files": sorted({d.metadata["file"] for d in result.context})}
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply["seconds"] = round(time.perf_counter() - start, 4)
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
