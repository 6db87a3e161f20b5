"""Parsing, chunking, embedding and the Chroma index of paperchat (``paperchat.vectorstore``).

Public names are imported on first use: the parse worker process imports only what parsing needs
(not LangChain), so it starts in a fraction of a second.
"""

from __future__ import annotations

from paperchat.vectorstore.lazy import lazy_attributes

_EXPORTS = {
    "chunk_document": "paperchat.vectorstore.chunk",
    "MiniLMEmbeddings": "paperchat.vectorstore.embed",
    "OpenAIEmbedder": "paperchat.vectorstore.embed",
    "make_embedder": "paperchat.vectorstore.embed",
    "PaperIndex": "paperchat.vectorstore.index",
    "PaperRetriever": "paperchat.vectorstore.retriever",
    "Settings": "paperchat.vectorstore.settings",
    "SearchHit": "paperchat.vectorstore.index",
    "FileResult": "paperchat.vectorstore.ingest",
    "IndexReport": "paperchat.vectorstore.ingest",
    "index_paths": "paperchat.vectorstore.ingest",
    "parse_file": "paperchat.vectorstore.parse",
    "Chunk": "paperchat.vectorstore.types",
    "DocumentRecord": "paperchat.vectorstore.types",
    "Page": "paperchat.vectorstore.types",
    "ParsedDocument": "paperchat.vectorstore.types",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
