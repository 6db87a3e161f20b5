"""A writer that takes a Chroma server's write lease again and again, for the lease tests:
``python -m tests.integration.lease_contender PORT COLLECTION ROUNDS``.

Each time it holds the lease it checks that no other holder is inside (a record on the server says who is),
marks itself inside, increments a counter by reading and writing it back (an increment lost to another
holder shows as a short count), checks the mark again and clears it. Prints one JSON line: rounds done and
the overlaps it saw.
"""

from __future__ import annotations

import json
import os
import sys


def main(port: int, collection: str, rounds: int) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from paperchat.vectorstore.lock import writer_lock
    from paperchat.vectorstore.settings import Settings

    settings = Settings(chroma_host="127.0.0.1", chroma_port=port, collection=collection)
    client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=ChromaSettings(anonymized_telemetry=False))
    probe = client.get_or_create_collection(collection + "-probe", embedding_function=None)
    probe.add(ids=["inside", "count"], metadatas=[{"who": ""}, {"n": 0}], embeddings=[[1.0], [1.0]])
    me, overlaps = str(os.getpid()), 0
    for _ in range(rounds):
        with writer_lock(settings, wait_s=600):
            inside = probe.get(ids=["inside"])["metadatas"][0]["who"]
            overlaps += inside != ""
            probe.update(ids=["inside"], metadatas=[{"who": me}])
            n = probe.get(ids=["count"])["metadatas"][0]["n"]
            probe.update(ids=["count"], metadatas=[{"n": n + 1}])
            overlaps += probe.get(ids=["inside"])["metadatas"][0]["who"] != me
            probe.update(ids=["inside"], metadatas=[{"who": ""}])
    print(json.dumps({"pid": int(me), "rounds": rounds, "overlaps": overlaps}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
