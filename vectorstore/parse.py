"""Turning files into cleaned pages: PDF (pypdfium2), Markdown and plain text.

pypdfium2 was chosen by measurement (``bench/pdf_parsers.py``; numbers in the README): fastest of the
candidates, clean ligatures, columns in reading order, and a permissive licence.

A PDF page without a usable text layer (a scan, or a font without a Unicode map whose text decodes to
nonsense) is judged page by page and read by OCR (``vectorstore/ocr.py``); ``ocr`` chooses: ``auto`` (those
pages only), ``always`` (every page), ``never``.

Every failure is a :class:`~paperchat.vectorstore.errors.DocumentError` naming the file and the reason: empty file,
not a PDF, corrupt or truncated, encrypted, no text layer (scanned) that OCR could not read either, a text
layer that decodes to nonsense, OCR needed but not installed, unsupported type, unreadable, too large.

Example:
    >>> doc = parse_file("sample_docs/rammer2019_bark_beetle_outbreaks.pdf")  # doctest: +SKIP
    >>> doc.title, doc.n_pages  # doctest: +SKIP
    ('Harnessing Deep Learning in Ecology: An Example Predicting Bark Beetle Outbreaks', 9)
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal, Protocol

from paperchat.vectorstore.clean import clean_pages, clean_text
from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.ocr import OcrEngine, OcrUnavailableError, default_engine, ocr_pages
from paperchat.vectorstore.types import Page, ParsedDocument
from paperchat.vectorstore.vocab import readable_share, word_rate

OcrMode = Literal["auto", "always", "never"]

SUPPORTED_SUFFIXES = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}
#: Below this share of recognisable words (with enough words to judge) a text layer is nonsense.
MIN_WORD_RATE = 0.35
MIN_WORDS_TO_JUDGE = 40
#: Fewer characters per page than this (on average) means there is no real text layer.
MIN_CHARS_PER_PAGE = 30
#: A page (with at least MIN_CHARS_TO_JUDGE visible characters) whose characters are less than this share
#: known words has a garbage text layer: pages of fonts without a Unicode map score 0.14-0.28, the real pages
#: of the benchmark corpus 0.51-0.94 (``vocab.readable_share``).
MIN_READABLE_SHARE = 0.40
MIN_CHARS_TO_JUDGE = 100
#: OCR replaces a garbage text layer only when it reads this much more of the page as words.
OCR_GAIN = 0.15
#: More text than this in one PDF is refused: 2,000 dense pages hold about 10 million characters.
MAX_TEXT_CHARS = 30_000_000

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>|,;]+)", re.I)


class Parser(Protocol):
    """Turns the bytes of one file into raw page texts and metadata (title, doi; ``ocr_pages`` when OCRed)."""

    def __call__(
        self, path: Path, data: bytes, max_pages: int, ocr: OcrMode = "auto", engine: OcrEngine | None = None
    ) -> tuple[list[str], dict[str, Any]]: ...


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


def page_needs_ocr(raw: str) -> str | None:
    """Why a page's raw text layer is unusable ("no text layer", "garbage text layer"), or None if it is fine.

    Judged on the raw text (cleaning first changes no page of the corpus's verdict and costs as much again).
    """
    text = _CONTROL.sub(" ", raw.replace("\ufffe", ""))  # pdfium's mark of a word hyphenated at a line end
    chars = len(re.sub(r"\s", "", text))
    if chars < MIN_CHARS_PER_PAGE:
        return "no text layer"
    if chars >= MIN_CHARS_TO_JUDGE and readable_share(text) < MIN_READABLE_SHARE:
        return "garbage text layer"
    return None


def _read_by_ocr(
    path: Path, pdf: Any, pages: list[str], ocr: OcrMode, engine: OcrEngine | None, meta: dict[str, Any]
) -> None:
    """Replace the text of the pages that need it (all for ``always``) by what OCR reads on them."""
    if ocr == "never":
        return
    why = {i: "always" if ocr == "always" else page_needs_ocr(text) for i, text in enumerate(pages)}
    wanted = [i for i, reason in why.items() if reason]
    if not wanted:
        return
    try:
        engine = engine or default_engine()
    except OcrUnavailableError as exc:
        if ocr == "always":
            raise DocumentError(path, f"{exc}, or index with --ocr auto") from exc
        meta["ocr_unavailable"] = str(exc)  # the text layer is kept; parse_file says so if it is unusable
        return
    meta["ocr_tried"] = len(wanted)
    read: list[int] = []
    for i, page in ocr_pages(pdf, wanted, engine):
        text = clean_text(page.text)
        if why[i] == "garbage text layer" and readable_share(text) < readable_share(clean_text(pages[i])) + OCR_GAIN:
            continue  # OCR reads no more words than the text layer: a foreign language, not a broken font
        if why[i] == "no text layer" and not text.strip():
            continue
        pages[i] = page.text
        read.append(i + 1)
        if i == 0:
            meta["ocr_title"] = page.title()
    if read:
        meta["ocr_pages"] = read
        meta["ocr_engine"] = engine.name


def _letters_and_digits(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", unicodedata.normalize("NFKC", text).lower())


def _masthead_above_title(font_title: str, meta_title: str, first_page: str) -> bool:
    """True if the largest line of page 1 is a journal name or logo ("remote sensing", "Ecological
    Informatics") printed above the real title: it is short, and the longer title the PDF's metadata
    names is printed on the page too."""
    words = font_title.split()
    meta_key = _letters_and_digits(meta_title)
    return (
        len(words) <= 6
        and len(meta_title.split()) > len(words)
        and meta_key != _letters_and_digits(font_title)
        and meta_key in _letters_and_digits(clean_text(first_page))
    )


def parse_pdf_bytes(
    path: Path, data: bytes, max_pages: int, ocr: OcrMode = "auto", engine: OcrEngine | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Raw page texts and metadata of a PDF; pages without a usable text layer are OCRed (see ``ocr``)."""
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
        meta: dict[str, Any] = {k: str(v) for k, v in pdf.get_metadata_dict().items() if v}
        _read_by_ocr(path, pdf, pages, ocr, engine, meta)
        if 1 in meta.get("ocr_pages", ()):
            title = re.sub(r"\s+", " ", clean_text(meta.pop("ocr_title", ""))).strip()
            title = title if 2 <= len(title.split()) <= 40 else ""
        else:
            title = _pdf_title(pdf[0])
        meta_title = re.sub(r"\s+", " ", meta.get("Title", "")).strip()
        if _plausible_metadata_title(meta_title) and (
            not title or _masthead_above_title(title, meta_title, pages[0])
        ):
            title = meta_title
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


def parse_text_bytes(
    path: Path, data: bytes, max_pages: int, ocr: OcrMode = "auto", engine: OcrEngine | None = None
) -> tuple[list[str], dict[str, Any]]:
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
    ocr: OcrMode = "auto",
    ocr_engine: OcrEngine | None = None,
) -> ParsedDocument:
    """Read, parse and clean one file into a :class:`ParsedDocument`.

    Args:
        path: The file.
        max_pages: PDFs with more pages are refused.
        max_bytes: Larger files are refused.
        ocr: ``auto`` OCRs the PDF pages without a usable text layer, ``always`` every page, ``never`` none.
        ocr_engine: The OCR engine (default: tesseract, when installed).

    Raises:
        DocumentError: the file cannot be indexed; the message says why.
    """
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        readable = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise DocumentError(path, f"unsupported file type '{path.suffix or '(none)'}' (paperchat reads {readable})")
    data = read_file(path, max_bytes)
    raw_pages, meta = PARSERS[kind](path, data, max_pages, ocr, ocr_engine)
    if kind == "pdf":
        pages = clean_pages(raw_pages)
    else:
        pages = [clean_text(p) for p in raw_pages]
    text = "\n".join(pages)
    n_chars = len(re.sub(r"\s", "", text))
    unavailable = meta.get("ocr_unavailable", "")  # "OCR is needed but tesseract is not installed: ..."
    if n_chars < MIN_CHARS_PER_PAGE * max(1, len(pages)) and (kind == "pdf" or n_chars == 0):
        if kind != "pdf":
            reason = "no text in the file"
        elif ocr == "never":
            reason = "no extractable text: it looks like a scanned PDF without a text layer; index it with --ocr auto"
        elif unavailable:
            reason = f"no extractable text: it looks like a scanned PDF without a text layer. {unavailable}"
        else:
            reason = "no extractable text: it looks like a scanned PDF, and OCR found no text on its pages either"
        raise DocumentError(path, reason)
    rate, n_words = word_rate(text)
    if n_words >= MIN_WORDS_TO_JUDGE and rate < MIN_WORD_RATE and kind != "pdf":
        raise DocumentError(
            path,
            f"the text does not read as prose (only {rate:.0%} of its words are recognisable): is it a data file "
            "(a sequence, a table of codes) rather than a paper? paperchat indexes papers",
        )
    if n_words >= MIN_WORDS_TO_JUDGE and rate < MIN_WORD_RATE:
        if ocr == "never":
            then = "Index it with --ocr auto to read its pages by OCR"
        elif unavailable:
            then = unavailable
        elif meta.get("ocr_tried"):
            then = "OCR did not read its pages any better (is the text in English, and legible on the page?)"
        else:
            then = "Index it with --ocr always to read every page by OCR"
        raise DocumentError(
            path,
            f"the text layer decodes to garbage (only {rate:.0%} of its words are recognisable; fonts "
            f"without a Unicode map). {then}",
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
        ocr_pages=list(meta.get("ocr_pages", [])),
        ocr_engine=str(meta.get("ocr_engine", "")),
    )
