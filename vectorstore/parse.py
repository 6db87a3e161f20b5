"""Turning files into cleaned pages: PDF (pypdfium2), Markdown and plain text.

pypdfium2 was chosen by measurement (``bench/pdf_parsers.py``; numbers in the README): fastest of the
candidates, clean ligatures, columns in reading order, and a permissive licence.

Every failure is a :class:`~paperchat.vectorstore.errors.DocumentError` naming the file and the reason: empty file,
not a PDF, corrupt or truncated, encrypted, no text layer (scanned), a text layer that decodes to
nonsense (fonts without a Unicode map), unsupported type, unreadable, too large.

Example:
    >>> doc = parse_file("sample_docs/rammer2019_bark_beetle_outbreaks.pdf")  # doctest: +SKIP
    >>> doc.title, doc.n_pages  # doctest: +SKIP
    ('Harnessing Deep Learning in Ecology: An Example Predicting Bark Beetle Outbreaks', 9)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

from paperchat.vectorstore.clean import clean_pages, clean_text
from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.types import Page, ParsedDocument
from paperchat.vectorstore.vocab import word_rate

SUPPORTED_SUFFIXES = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}
#: Below this share of recognisable words (with enough words to judge) a text layer is nonsense.
MIN_WORD_RATE = 0.35
MIN_WORDS_TO_JUDGE = 40
#: Fewer characters per page than this (on average) means there is no real text layer.
MIN_CHARS_PER_PAGE = 30
#: More text than this in one PDF is refused: 2,000 dense pages hold about 10 million characters.
MAX_TEXT_CHARS = 30_000_000

_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>|,;]+)", re.I)


class Parser(Protocol):
    """Turns the bytes of one file into raw page texts and metadata (title, doi)."""

    def __call__(self, path: Path, data: bytes, max_pages: int) -> tuple[list[str], dict[str, str]]: ...


def supported(path: Path) -> bool:
    """True if paperchat reads files with this extension."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _find_doi(*texts: str) -> str | None:
    for text in texts:
        match = _DOI.search(text or "")
        if match:
            return match.group(1).rstrip(".)]}")
    return None


def _pdf_title(page: object) -> str:
    """The largest-font line(s) of a first page: the title, in practice."""
    textpage = page.get_textpage()  # type: ignore[attr-defined]
    text = textpage.get_text_range()
    lines: list[tuple[str, float]] = []
    chars: list[str] = []
    heights: list[float] = []
    for i, ch in enumerate(text):
        if ch in "\r\n":
            if chars:
                lines.append(("".join(chars), sorted(heights)[len(heights) // 2] if heights else 0.0))
            chars, heights = [], []
            continue
        chars.append(ch)
        if ch.isalpha() and len(heights) < 40:
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            heights.append(round(top - bottom, 1))
    if chars:
        lines.append(("".join(chars), sorted(heights)[len(heights) // 2] if heights else 0.0))
    sized = [h for line, h in lines if len(line.split()) >= 2]
    if not sized:
        return ""
    largest = max(sized)
    title = " ".join(line.strip() for line, h in lines if h >= 0.97 * largest and len(line.strip()) > 1)
    title = re.sub(r"\s+", " ", clean_text(title)).strip()
    return title if 2 <= len(title.split()) <= 40 else ""


def _plausible_metadata_title(title: str) -> bool:
    low = title.lower().strip()
    return (
        len(low.split()) >= 2
        and not low.startswith(("microsoft word", "untitled", "doi:", "http"))
        and not re.search(r"\.(docx?|tex|pdf|dvi)$", low)
    )


def parse_pdf_bytes(path: Path, data: bytes, max_pages: int) -> tuple[list[str], dict[str, str]]:
    """Raw page texts and metadata of a PDF."""
    import pypdfium2 as pdfium

    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF" not in data[:1024]:
        raise DocumentError(path, "not a PDF (no %PDF header): the file is corrupt or not really a PDF")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise DocumentError(
                path, "encrypted PDF: it needs a password. Save an unprotected copy (e.g. qpdf --decrypt) and index that"
            ) from exc
        raise DocumentError(path, f"corrupt or truncated PDF ({exc}); re-download or re-export the file") from exc
    try:
        n_pages = len(pdf)
        if n_pages == 0:
            raise DocumentError(path, "the PDF has no pages")
        if n_pages > max_pages:
            raise DocumentError(
                path, f"the PDF has {n_pages} pages, more than the limit of {max_pages} (PAPERCHAT_MAX_PAGES)"
            )
        pages = []
        total = 0
        for i in range(n_pages):
            try:
                pages.append(pdf[i].get_textpage().get_text_range())
            except pdfium.PdfiumError as exc:
                raise DocumentError(path, f"page {i + 1} cannot be read ({exc}): the PDF is damaged") from exc
            total += len(pages[-1])
            if total > MAX_TEXT_CHARS:
                raise DocumentError(
                    path, f"the PDF holds more than {MAX_TEXT_CHARS // 1_000_000} million characters of text by page "
                    f"{i + 1}: not a paper (or a decompression bomb); split it or index a shorter file"
                )
        meta = {k: str(v) for k, v in pdf.get_metadata_dict().items() if v}
        title = _pdf_title(pdf[0])
        if not title and _plausible_metadata_title(meta.get("Title", "")):
            title = meta["Title"].strip()
        meta["title"] = title
        return pages, meta
    finally:
        pdf.close()


def _decode(path: Path, data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(path, f"invalid UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data[:4096]:
        raise DocumentError(path, "binary data, not text: is the extension right?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # legacy 8-bit text: keep what is readable


def parse_text_bytes(path: Path, data: bytes, max_pages: int) -> tuple[list[str], dict[str, str]]:
    """A Markdown or text file is one page; its title is the first heading or first line."""
    text = _decode(path, data)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    title = re.sub(r"^#+\s*", "", first) if len(first) <= 200 else ""
    return [text], {"title": title}


PARSERS: dict[str, Parser] = {"pdf": parse_pdf_bytes, "markdown": parse_text_bytes, "text": parse_text_bytes}


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file to index, or a :class:`DocumentError` saying why they cannot be read."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise DocumentError(path, "file not found") from exc
    except OSError as exc:
        raise DocumentError(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise DocumentError(path, "not a regular file")
    if size == 0:
        raise DocumentError(path, "empty file (0 bytes)")
    if size > max_bytes:
        raise DocumentError(
            path, f"file too large ({size / 1e6:.0f} MB > {max_bytes / 1e6:.0f} MB, PAPERCHAT_MAX_FILE_MB)"
        )
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise DocumentError(path, "permission denied: the file is not readable by this user") from exc
    except OSError as exc:
        raise DocumentError(path, f"cannot read the file ({exc.strerror or exc})") from exc


def parse_file(
    path: str | Path,
    max_pages: int = 2000,
    max_bytes: int = 200_000_000,
) -> ParsedDocument:
    """Read, parse and clean one file into a :class:`ParsedDocument`.

    Raises:
        DocumentError: the file cannot be indexed; the message says why.
    """
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        readable = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise DocumentError(path, f"unsupported file type '{path.suffix or '(none)'}' (paperchat reads {readable})")
    data = read_file(path, max_bytes)
    raw_pages, meta = PARSERS[kind](path, data, max_pages)
    if kind == "pdf":
        pages = clean_pages(raw_pages)
    else:
        pages = [clean_text(p) for p in raw_pages]
    text = "\n".join(pages)
    n_chars = len(re.sub(r"\s", "", text))
    if n_chars < MIN_CHARS_PER_PAGE * max(1, len(pages)) and (kind == "pdf" or n_chars == 0):
        reason = (
            "no extractable text: it looks like a scanned PDF without a text layer; run OCR first "
            "(e.g. ocrmypdf) and index the result"
            if kind == "pdf"
            else "no text in the file"
        )
        raise DocumentError(path, reason)
    rate, n_words = word_rate(text)
    if n_words >= MIN_WORDS_TO_JUDGE and rate < MIN_WORD_RATE:
        raise DocumentError(
            path,
            f"the text layer decodes to garbage (only {rate:.0%} of its words are recognisable; fonts "
            "without a Unicode map). Run OCR on it (e.g. ocrmypdf --force-ocr) and index the result",
        )
    sha = hashlib.sha256(data).hexdigest()
    title = meta.get("title") or path.stem.replace("_", " ")
    return ParsedDocument(
        file=path.name,
        path=str(path.resolve()),
        sha256=sha,
        title=title,
        doi=_find_doi(meta.get("Subject", ""), meta.get("Keywords", ""), *pages[:2]),
        kind=kind,
        pages=[Page(i + 1, p) for i, p in enumerate(pages)],
    )
