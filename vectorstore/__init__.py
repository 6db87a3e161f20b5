"""Parsing, chunking, embedding and the Chroma index of paperchat (``paperchat.vectorstore``)."""

from paperchat.vectorstore.chunk import chunk_document
from paperchat.vectorstore.embed import MiniLMEmbeddings, OpenAIEmbedder, make_embedder
from paperchat.vectorstore.index import PaperIndex, SearchHit
from paperchat.vectorstore.ingest import FileResult, IndexReport, index_paths
from paperchat.vectorstore.parse import parse_file
from paperchat.vectorstore.types import Chunk, DocumentRecord, Page, ParsedDocument

__all__ = [
    "Chunk",
    "DocumentRecord",
    "FileResult",
    "IndexReport",
    "MiniLMEmbeddings",
    "OpenAIEmbedder",
    "Page",
    "PaperIndex",
    "ParsedDocument",
    "SearchHit",
    "chunk_document",
    "index_paths",
    "make_embedder",
    "parse_file",
]
