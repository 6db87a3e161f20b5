"""Typed records that flow through ingestion: a parsed document, its pages, its chunks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Page:
    """The cleaned text of one page (1-based ``number``; Markdown/text files are one 'page')."""

    number: int
    text: str


@dataclass(slots=True)
class ParsedDocument:
    """A file turned into cleaned pages plus the metadata that identifies it."""

    file: str  # file name as shown in citations
    path: str  # absolute path at indexing time
    sha256: str
    title: str
    doi: str | None
    kind: str  # "pdf", "markdown" or "text"
    pages: list[Page]
    ocr_pages: list[int] = field(default_factory=list)  # pages whose text was read by OCR (1-based)
    ocr_engine: str = ""  # e.g. "tesseract 5.3.0"

    @property
    def doc_id(self) -> str:
        """Content identity: the first 16 hex digits of the file's sha256."""
        return self.sha256[:16]

    @property
    def n_pages(self) -> int:
        return len(self.pages)


@dataclass(slots=True)
class Chunk:
    """A passage of a document, small enough for the embedder, with where it came from."""

    doc_id: str
    index: int
    text: str
    page_start: int
    page_end: int
    section: str = ""
    in_references: bool = False
    n_tokens: int = 0

    @property
    def id(self) -> str:
        """Deterministic chunk id: document id and position."""
        return f"{self.doc_id}:{self.index:05d}"


@dataclass(slots=True)
class DocumentRecord:
    """What the index knows about one indexed document (one row of ``paperchat list``)."""

    id: str
    file: str
    title: str
    pages: int
    chunks: int
    sha256: str
    doi: str | None = None
    path: str = ""  # where it was found last (its first existing path)
    paths: list[str] = field(default_factory=list)  # every current path of this content
    kind: str = ""  # "pdf", "markdown", "text", or "langchain" (texts added through the VectorStore API)
    status: str = "complete"  # "partial" while its chunks are being written
    rev: int = 0  # changes whenever the document's chunks or names change
    ocr_pages: list[int] = field(default_factory=list)  # pages whose text was read by OCR (1-based)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly view (``paperchat list --json``)."""
        return {
            "id": self.id,
            "file": self.file,
            "title": self.title,
            "pages": self.pages,
            "chunks": self.chunks,
            "doi": self.doi,
            "sha256": self.sha256,
            "kind": self.kind,
            "paths": self.paths,
            "ocr_pages": self.ocr_pages,
        }


def page_ranges(pages: list[int]) -> str:
    """Page numbers written compactly: ``[1, 2, 3, 7]`` -> ``"1-3,7"`` (for metadata and reports)."""
    out: list[str] = []
    for n in sorted(set(pages)):
        if out and n == int(out[-1].rsplit("-", 1)[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def parse_page_ranges(text: str) -> list[int]:
    """The inverse of :func:`page_ranges` (``"1-3,7"`` -> ``[1, 2, 3, 7]``); malformed parts are skipped."""
    pages: list[int] = []
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            pages.extend(range(int(first), int(last or first) + 1))
    return pages
